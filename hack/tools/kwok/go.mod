// Builds kwok (fake nodes whose pods run and complete) and kwokctl (starts the
// control plane with its binary runtime).
module cronwarden.io/hack/tools/kwok

go 1.26.0

require sigs.k8s.io/kwok v0.8.0
