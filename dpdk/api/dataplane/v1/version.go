// Package dataplanev1 is the Filament dataplane's gRPC API, version 1:
// the messages and service generated from dataplane.proto (`make generate`)
// and the API version both sides announce in Hello.
package dataplanev1

// The API version this package describes. The major is the package's (v1):
// a server refuses clients of another major. Minors add fields, RPCs and
// capabilities and nothing else.
const (
	APIMajor = 1
	APIMinor = 0
)

// Version is APIMajor.APIMinor as the handshake carries it.
func Version() *ApiVersion { return &ApiVersion{Major: APIMajor, Minor: APIMinor} }
