-- Suspend a ScheduledTask: cronwarden suspends its CronJob, no new runs start.
-- Argo CD reverts it at the next sync unless spec.suspend is also true in Git
-- (or the Application ignores the field).
if obj.spec.cronJobRef ~= nil then
  error("monitor mode: suspend the CronJob " .. obj.spec.cronJobRef.name .. " instead", 0)
end
obj.spec.suspend = true
return obj
