// Builds etcd. Kubernetes 1.36 is paired with etcd 3.6 by kubeadm; Debian
// bookworm's etcd-server (3.4.23) is older than the 3.4.29 that current
// kube-apiservers need for their health endpoints, so etcd is built here.
module cronwarden.io/hack/tools/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v3.6.14
