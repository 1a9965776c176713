"""`kubectl cronwarden`: a kubectl plugin (krew conventions) for ScheduledTasks.

Layers, as in the operator: `cli` parses arguments and maps outcomes to exit codes,
`commands` performs one subcommand's requests through `client` (the only module that
talks HTTP, with the standard library; `kubeconfig` decides where and as whom), and the
rest are pure functions of objects and `now` (`text`, `tasks`, `why`, `slots`,
`trigger`, `gitops`). May import the standard library, PyYAML, cronwarden.core's pure
schedule and run modules and `names`: never kopf, prometheus_client, pydantic or the
kubernetes client, so that it ships as one file (`make dist`) that any Python 3.11 runs.
"""
