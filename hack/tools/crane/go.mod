// Builds crane, for `make pin-base-image`: it resolves the base image's tag to
// its digest without a Docker engine.
module cronwarden.io/hack/tools/crane

go 1.26.0

require github.com/google/go-containerregistry v0.22.1
