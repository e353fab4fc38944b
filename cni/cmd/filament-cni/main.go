// Command filament-cni is the CNI plugin of Filament: kubelet (or a meta
// plugin such as Multus) runs it for every pod attachment, and it forwards
// ADD, DEL, CHECK, STATUS and GC to the node's filament-agent. VERSION is
// answered by skel. See docs/cni.md.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/filament-net/filament/cni/plugin"
)

func main() {
	skel.PluginMainFuncs(plugin.New().Funcs(), plugin.Versions, plugin.About)
}
