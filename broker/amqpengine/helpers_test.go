package amqpengine

import (
	"errors"
	"testing"
)

func wantErr(t testing.TB, err error, code uint16, text string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want %d %q, got %v", code, text, err)
	}
	if e.Code != code || e.Text != text {
		t.Fatalf("want %d %q,\n got %d %q", code, text, e.Code, e.Text)
	}
}

func asError(err error, e **Error) bool { return errors.As(err, e) }
