// Package message implements "mqadmin message …": get one message by id,
// unique key or queue offset; query by key or tag; send a test message;
// show a message's trace; hand a stored message to a live consumer.
package message

import (
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mqops/mqops/mqadmin/admin"
	"github.com/mqops/mqops/mqadmin/internal/cmdutil"
	"github.com/mqops/mqops/mqadmin/internal/output"
)

// NewCmd returns the message command group.
func NewCmd(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "message",
		Short: "Find, show, trace, send and resend messages",
	}
	cmd.AddCommand(newGetCmd(f), newQueryCmd(f), newSendCmd(f), newTraceCmd(f), newResendCmd(f))
	return cmd
}

// View is a message as printed with -o json: the decoded fields, the body
// as text (or hex when it is not printable text) and, for message get,
// which groups consumed it.
type View struct {
	*admin.Message
	Body    string        `json:"body,omitempty"`
	BodyHex string        `json:"bodyHex,omitempty"`
	Tracks  []admin.Track `json:"tracks,omitempty"`
}

func newView(m *admin.Message, forceHex bool) View {
	v := View{Message: m}
	if !forceHex && isText(m.Body) {
		v.Body = string(m.Body)
	} else {
		v.BodyHex = strings.ToUpper(hex.EncodeToString(m.Body))
	}
	return v
}

// isText reports whether a body prints as text: valid UTF-8 without
// control characters other than white space.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// printView prints Java mqadmin's message block (20-wide labels), then the
// consumer tracks as a table.
func printView(p *output.Printer, v View, withTracks bool) error {
	m := v.Message
	props := make([]string, 0, len(m.Properties))
	for _, k := range slices.Sorted(maps.Keys(m.Properties)) {
		props = append(props, k+"="+m.Properties[k])
	}
	lines := [][2]string{
		{"Message ID", m.MsgID},
		{"OffsetID", m.OffsetMsgID},
		{"Topic", m.Topic},
		{"Tags", "[" + m.Tags + "]"},
		{"Keys", "[" + strings.Join(m.Keys, " ") + "]"},
		{"Broker Name", m.BrokerName},
		{"Queue ID", strconv.Itoa(m.QueueID)},
		{"Queue Offset", strconv.FormatInt(m.QueueOffset, 10)},
		{"CommitLog Offset", strconv.FormatInt(m.CommitLogOffset, 10)},
		{"Reconsume Times", strconv.Itoa(m.ReconsumeTimes)},
		{"Born Timestamp", output.Time(m.BornTimestamp)},
		{"Store Timestamp", output.Time(m.StoreTimestamp)},
		{"Born Host", m.BornHost},
		{"Store Host", m.StoreHost},
		{"System Flag", strconv.Itoa(m.SysFlag)},
		{"Properties", "{" + strings.Join(props, ", ") + "}"},
	}
	if v.BodyHex != "" || len(m.Body) == 0 {
		lines = append(lines, [2]string{"Message Body (hex)", v.BodyHex})
	} else {
		lines = append(lines, [2]string{"Message Body", v.Body})
	}
	for _, l := range lines {
		p.Printf("%-20s %s\n", l[0]+":", l[1])
	}
	if !withTracks {
		return nil
	}
	p.Printf("\n")
	if len(v.Tracks) == 0 {
		p.Printf("WARN: No Consumer\n")
		return nil
	}
	rows := make([][]string, len(v.Tracks))
	for i, t := range v.Tracks {
		rows[i] = []string{t.Group, t.Type, strconv.FormatBool(t.Online), t.Detail}
	}
	return p.Table([]string{"#Consumer Group", "#Track Type", "#Online", "#Detail"}, rows)
}

// printList prints messages one per row.
func printList(p *output.Printer, ms []*admin.Message, forceHex bool) error {
	if p.IsJSON() {
		views := make([]View, len(ms))
		for i, m := range ms {
			views[i] = newView(m, forceHex)
		}
		return p.JSON(views)
	}
	rows := make([][]string, len(ms))
	for i, m := range ms {
		rows[i] = []string{m.MsgID, strconv.Itoa(m.QueueID), strconv.FormatInt(m.QueueOffset, 10), m.BrokerName,
			output.Time(m.StoreTimestamp), m.Tags, strings.Join(m.Keys, ","), m.OffsetMsgID}
	}
	return p.Table([]string{"#Message ID", "#QID", "#Offset", "#Broker Name", "#Store Time", "#Tags", "#Keys", "#Offset Message ID"}, rows)
}
