// Builds helm, for linting, rendering and installing the chart.
module cronwarden.io/hack/tools/helm

go 1.26.0

require helm.sh/helm/v3 v3.21.4
