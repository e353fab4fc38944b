module github.com/filament-net/filament

go 1.26

require (
	go.uber.org/zap v1.28.0
	gopkg.in/yaml.v3 v3.0.1
)

require go.uber.org/multierr v1.10.0 // indirect
