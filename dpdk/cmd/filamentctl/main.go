// Command filamentctl shows what a node's filament-dataplane holds and
// counts, over its API socket: the operator's tool, like Tungsten Fabric's
// vif, rt, nh and dropstats.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/status"

	pb "github.com/filament-net/filament/dpdk/api/dataplane/v1"
	"github.com/filament-net/filament/dpdk/apiclient"
)

const usage = `Usage: filamentctl [--socket PATH] [-o table|json] COMMAND [flags]

Shows what this node's filament-dataplane holds and counts, read over its
API socket (default /run/filament/dataplane.sock, root only).

Commands:
%s
Every command takes --help, and the global flags before or after it.
-o json prints one JSON object with stable snake_case field names.

Exit status: 0 on success, 1 if the dataplane cannot be reached or refuses
the call (one line on stderr), 2 on bad usage.

Global flags:
`

// opts are the flags every command takes.
type opts struct {
	socket  string
	output  string
	timeout time.Duration
}

func (o *opts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.socket, "socket", apiclient.DefaultSocket, "filament-dataplane's API socket `path`")
	fs.StringVar(&o.output, "o", "table", "output `format`: table or json")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up on the dataplane after this long")
}

type command struct {
	name    string
	summary string
	help    string // what the output says, column by column
	flags   func(fs *flag.FlagSet)
	run     func(ctx context.Context, c *apiclient.Client, out *output) error
	// stream commands run until done, not under --timeout.
	long bool
}

var commands []*command

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o opts
	gfs := flag.NewFlagSet("filamentctl", flag.ContinueOnError)
	gfs.SetOutput(stderr)
	o.register(gfs)
	gfs.Usage = func() {
		var b strings.Builder
		for _, c := range commands {
			fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
		}
		fmt.Fprintf(gfs.Output(), usage, b.String())
		gfs.PrintDefaults()
	}
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if gfs.NArg() == 0 {
		fmt.Fprintln(stderr, "filamentctl: a command is required (see --help)")
		return 2
	}
	name := gfs.Arg(0)
	var cmd *command
	for _, c := range commands {
		if c.name == name {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "filamentctl: unknown command %q (see --help)\n", name)
		return 2
	}
	// The command's flag set takes the global flags too, starting from
	// what they said before the command.
	given := map[string]string{}
	gfs.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })
	fs := flag.NewFlagSet("filamentctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.register(fs)
	for n, v := range given {
		fs.Set(n, v) //nolint:errcheck // parsed once already
	}
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: filamentctl %s [flags]\n\n%s\n\n%s\nFlags:\n", name, cmd.summary, cmd.help)
		fs.PrintDefaults()
	}
	if err := fs.Parse(gfs.Args()[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "filamentctl %s: unexpected arguments %q (see --help)\n", name, fs.Args())
		return 2
	}
	if o.output != "table" && o.output != "json" {
		fmt.Fprintf(stderr, "filamentctl: -o %q: table or json\n", o.output)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c, err := apiclient.Dial(dctx, o.socket, apiclient.WithName("filamentctl"))
	if err != nil {
		fmt.Fprintf(stderr, "filamentctl: %v\n", err)
		return 1
	}
	defer c.Close()
	if !cmd.long {
		ctx = dctx
	}
	out := &output{w: stdout, json: o.output == "json", socket: o.socket}
	if err := cmd.run(ctx, c, out); err != nil {
		fmt.Fprintf(stderr, "filamentctl %s: %s\n", name, oneLine(err))
		return 1
	}
	return 0
}

// oneLine says what an RPC error is, on one line.
func oneLine(err error) string {
	if st, ok := status.FromError(err); ok {
		return strings.ReplaceAll(fmt.Sprintf("%s (%s)", st.Message(), st.Code()), "\n", "; ")
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

// output writes tables or JSON.
type output struct {
	w      io.Writer
	json   bool
	socket string
}

func (o *output) writeJSON(v any) error {
	enc := json.NewEncoder(o.w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
func (o *output) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(o.w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func u(v uint64) string   { return strconv.FormatUint(v, 10) }
func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func join32(l []uint32) string {
	s := make([]string, len(l))
	for i, v := range l {
		s[i] = u32(v)
	}
	return orDash(strings.Join(s, ","))
}

func lower(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

func kindName(k pb.PortKind) string  { return lower(k.String(), "PORT_KIND_") }
func nhType(t pb.NextHopType) string { return lower(t.String(), "NEXT_HOP_TYPE_") }
func encapName(e pb.Encap) string    { return lower(e.String(), "ENCAP_") }

// isMPLS: the encapsulation carries a label, not a VNI.
func isMPLS(e pb.Encap) bool {
	return e == pb.Encap_ENCAP_MPLSOUDP || e == pb.Encap_ENCAP_MPLSOGRE
}
func effectiveMTU(m uint32) uint32 {
	if m == 0 {
		return 1500
	}
	return m
}

// nonNil keeps JSON lists [] rather than null.
func nonNil[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}
