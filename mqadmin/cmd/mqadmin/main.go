// Command mqadmin is the mqops operations CLI; see mqadmin --help.
package main

import (
	"os"

	"github.com/mqops/mqops/mqadmin/internal/cmd/root"
)

func main() { os.Exit(root.Main()) }
