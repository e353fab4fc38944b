module github.com/filament-net/filament

go 1.26
