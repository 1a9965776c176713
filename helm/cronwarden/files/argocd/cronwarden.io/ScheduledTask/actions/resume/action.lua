-- Resume a suspended ScheduledTask: runs start on schedule again.
-- Argo CD reverts it at the next sync unless Git says so too.
if obj.spec.cronJobRef ~= nil then
  error("monitor mode: resume the CronJob " .. obj.spec.cronJobRef.name .. " instead", 0)
end
obj.spec.suspend = false
return obj
