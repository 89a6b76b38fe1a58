// The synthetic watch source for Herald's benchmarks: a stand-in Kubernetes
// API server (standard library only).
module herald.dev/tests/bench/synthetic

go 1.24.0
