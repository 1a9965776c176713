"""The harness behind `make bench` and `make soak` (and the coming `make chaos`): one
package of small modules that the entry points in hack/ share.

- setup:    the cluster (hack/cluster.sh, components), namespaces, the CRD, the operator process
- load:     the objects applied (tasks, plain CronJobs) and how they are applied
- measure:  watches, convergence and latency, process RSS/CPU, API request counters
- phases:   the phases of `make bench`
- report:   tables for bench and soak

Nothing here imports cronwarden: the operator under test runs as a process, from any
checkout (--operator-root).
"""
