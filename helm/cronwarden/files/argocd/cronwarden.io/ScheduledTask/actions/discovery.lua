-- Argo CD resource actions for cronwarden.io/ScheduledTask (argocd-cm key
-- resource.customizations.actions.cronwarden.io_ScheduledTask; docs/gitops.md).
-- suspend and resume set spec.suspend. A task in monitor mode (spec.cronJobRef)
-- may not set spec.suspend (the CronJob it watches has its own): neither is offered.
-- There is no trigger action: a run must be a Job controlled by the task's CronJob
-- (by uid), which a ScheduledTask action cannot see; run Argo CD's built-in
-- create-job action on the CronJob under the task instead (docs/gitops.md).
local actions = {}
local spec = obj.spec or {}
if spec.cronJobRef ~= nil then
  return actions
end
if spec.suspend == true then
  actions["resume"] = {["iconClass"] = "fa fa-fw fa-play", ["displayName"] = "Resume"}
else
  actions["suspend"] = {["iconClass"] = "fa fa-fw fa-pause", ["displayName"] = "Suspend"}
end
return actions
