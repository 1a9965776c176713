// crondiff: prints robfig/cron v3.0.1 slot times for cronwarden's schedule tests.
// Pinned to the robfig/cron version that k8s.io/kubernetes v1.36 requires.
module cronwarden.io/hack/crondiff

go 1.22

require github.com/robfig/cron/v3 v3.0.1
