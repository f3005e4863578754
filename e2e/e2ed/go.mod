module github.com/mqops/mqops/e2e/e2ed

go 1.26.8
