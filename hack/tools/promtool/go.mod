// Builds promtool, for checking and unit-testing the alert rules and the
// /metrics output. Prometheus v3.14.0 is Go module tag v0.314.0; its go.mod has
// replace and exclude directives, so it cannot be built with "go install
// pkg@version" and is required from this module instead.
module cronwarden.io/hack/tools/promtool

go 1.26.0

require github.com/prometheus/prometheus v0.314.0
