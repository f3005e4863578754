package output

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Progress shows a spinner and a status line on a terminal while a long
// operation runs. On anything that is not a terminal (a pipe, a file, a
// test) it prints nothing, so scripts only ever see the result.
type Progress struct {
	w      io.Writer
	mu     sync.Mutex
	status string
	stop   chan struct{}
	done   chan struct{}
}

// StartProgress starts a progress indicator on w with a first status; it
// is inert unless w is a terminal. Stop must be called.
func StartProgress(w io.Writer, status string) *Progress {
	p := &Progress{w: w, status: status}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return p
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go p.loop()
	return p
}

// Update replaces the status text.
func (p *Progress) Update(format string, args ...any) {
	p.mu.Lock()
	p.status = fmt.Sprintf(format, args...)
	p.mu.Unlock()
}

// Stop erases the indicator.
func (p *Progress) Stop() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	<-p.done
	p.stop = nil
}

func (p *Progress) loop() {
	defer close(p.done)
	frames := `|/-\`
	t := time.NewTicker(120 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		p.mu.Lock()
		status := p.status
		p.mu.Unlock()
		// \r and erase-line redraw in place.
		fmt.Fprintf(p.w, "\r\033[K%c %s", frames[i%len(frames)], status)
		select {
		case <-p.stop:
			fmt.Fprint(p.w, "\r\033[K")
			return
		case <-t.C:
		}
	}
}
