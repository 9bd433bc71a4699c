// Package startsignals catches SIGTERM, SIGINT and SIGHUP from the start of the
// program, before the main function runs: Go initializes the packages a program
// imports before main, and this one, with nothing but the standard library below
// it, among the first. Without it a signal that arrives while the others
// initialize ends the process as Go does by default (a SIGHUP too).
//
// `fixit serve` takes the signals caught (Take); every other command gives them
// back (Release), and one caught meanwhile is raised again with the default
// handling restored.
package startsignals

import (
	"os"
	"os/signal"
	"syscall"
)

// caught receives the signals from init until Take or Release.
var caught = make(chan os.Signal, 8)

func init() {
	signal.Notify(caught, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
}

// Take returns the channel the signals arrive on, with those caught so far
// waiting in it. The caller owns it from now on; signal.Stop ends the catching.
func Take() chan os.Signal { return caught }

// Release stops catching and raises each signal caught so far again, now with
// Go's default handling: for commands that want SIGINT to end them.
func Release() {
	signal.Stop(caught)
	for {
		select {
		case sig := <-caught:
			signal.Reset(sig)
			if self, err := os.FindProcess(os.Getpid()); err == nil {
				_ = self.Signal(sig)
			}
		default:
			return
		}
	}
}
