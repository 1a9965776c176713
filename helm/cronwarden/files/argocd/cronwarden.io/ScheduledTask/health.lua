-- Argo CD health check for cronwarden.io/ScheduledTask (argocd-cm key
-- resource.customizations.health.cronwarden.io_ScheduledTask; docs/gitops.md).
-- Lua 5.1, as Argo CD runs it. In order:
--   Progressing  cronwarden has not reported on this generation of the spec yet
--                (no status, or status.observedGeneration < metadata.generation)
--   Degraded     Stalled=True: the spec cannot be reconciled (InvalidSpec,
--                UnknownTimeZone, CronJobNotOwned, CronJobNotFound, NamespaceExcluded,
--                TaskLimitExceeded); waiting will not help, a change will
--   Progressing  Reconciling=True: the CronJob is being created
--   Degraded     Ready=False without Stalled (an operator without Stalled)
--   Progressing  no Ready condition yet, or Ready=Unknown
--   Suspended    spec.suspend is true, or Suspended=True (monitor mode: the CronJob's)
--   Degraded     the runs need attention: Failing, Late, Blocked or Stale is True
--   Healthy      otherwise, with Ready's message
local hs = {}

local function condition_map(status)
  local found = {}
  if status == nil or status.conditions == nil then
    return found
  end
  for _, c in ipairs(status.conditions) do
    if c.type ~= nil then
      found[c.type] = c
    end
  end
  return found
end

local function describe(c)
  local text = c.type
  if c.reason ~= nil and c.reason ~= "" then
    text = text .. " (" .. c.reason .. ")"
  end
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status
if status == nil or status.observedGeneration == nil or status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "waiting for cronwarden to reconcile generation " .. tostring(generation)
  return hs
end

local conditions = condition_map(status)

local stalled = conditions["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local reconciling = conditions["Reconciling"]
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end

local ready = conditions["Ready"]
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(ready)
  return hs
end
if ready == nil or ready.status ~= "True" then
  hs.status = "Progressing"
  if ready ~= nil then
    hs.message = describe(ready)
  else
    hs.message = "waiting for the Ready condition"
  end
  return hs
end

local suspended = conditions["Suspended"]
if (obj.spec ~= nil and obj.spec.suspend == true)
    or (suspended ~= nil and suspended.status == "True") then
  hs.status = "Suspended"
  if suspended ~= nil and suspended.status == "True" then
    hs.message = describe(suspended)
  else
    hs.message = "spec.suspend is true: no new runs start"
  end
  return hs
end

local problems = {}
for _, t in ipairs({"Failing", "Late", "Blocked", "Stale"}) do
  local c = conditions[t]
  if c ~= nil and c.status == "True" then
    table.insert(problems, describe(c))
  end
end
if #problems > 0 then
  hs.status = "Degraded"
  hs.message = table.concat(problems, "; ")
  return hs
end

hs.status = "Healthy"
hs.message = ready.message or "reconciled"
return hs
