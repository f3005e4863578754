package wire

import (
	"testing"
)

// FuzzDecodeFrame feeds arbitrary frames to the decoder: it must return an
// error or a command, never panic, and a decoded command must re-encode.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(frame(0, []byte(`{"code":10,"language":"GO","version":317,"opaque":7,"flag":0,"remark":"","extFields":{"topic":"T","properties":"A\u0001B\u0002"}}`), []byte("x")))
	f.Add(frame(0, []byte(`{"code":0,"extFields":{"a":1,"b":true,"c":null,"d":[1]},"flag":1}`), nil))
	f.Add(frame(0, []byte(`{"remark":"\ud800\u0041","code":-1}`), nil))
	bin := Command{Code: 11, SerializeType: SerializeRocketMQ, Remark: []byte("r")}
	bin.Set("k", "v")
	f.Add(AppendFrame(nil, &bin)[4:])
	f.Add([]byte{1, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Command
		if err := DecodeFrame(data, &c); err != nil {
			return
		}
		out := AppendFrame(nil, &c)
		var back Command
		if err := DecodeFrame(out[4:], &back); err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if back.Code != c.Code || back.Opaque != c.Opaque || len(back.Ext) > len(c.Ext) {
			t.Fatalf("round trip changed the command: %+v vs %+v", back, c)
		}
	})
}
