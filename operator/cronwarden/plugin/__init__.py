"""`kubectl cronwarden`: a kubectl plugin (krew conventions) for ScheduledTasks.

Layers, as in the operator: `cli` parses arguments and maps outcomes to exit codes,
`commands` performs one subcommand's requests through `client` (the only module that
imports the kubernetes client), and the rest are pure functions of objects and `now`
(`text`, `tasks`, `why`, `slots`, `trigger`, `gitops`). Nothing here imports kopf or
prometheus_client, so the plugin starts quickly and needs no operator runtime.
"""
