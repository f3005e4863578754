//go:build !race

package acl

const raceOn = false
