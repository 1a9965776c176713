"""The harness behind `make bench`, `make soak` and `make chaos`: one package of small
modules that the entry points in hack/ share.

- setup:    the cluster (hack/cluster.sh, components), namespaces, the CRD, the operator process
- load:     the objects applied (tasks, plain CronJobs, the chaos mix) and how they are applied
- measure:  watches, convergence and latency, process RSS/CPU, API request counters
- phases:   the phases of `make bench`
- recorder: the chaos ground truth, a separate process (standard library and the kubernetes
            client only: it imports neither cronwarden nor the rest of this package)
- analysis: the chaos figures, computed from the recorder's log
- report:   tables for bench, soak and chaos

Nothing here imports cronwarden: the operator under test runs as a process, from any
checkout (--operator-root).
"""
