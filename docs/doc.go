// Package docs has no code: its tests keep the operator's documentation in
// this directory true to the code (every drop reason of the fast path is
// explained in operations.md).
package docs
