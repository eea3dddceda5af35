// Command agent is Brupop's node agent, run by a DaemonSet on every opted-in Bottlerocket node:
// it drives its own node's update as the node's BottlerocketShadow asks, through the host API
// on /run/api.sock and the Brupop API server. Flags fall back to upstream's environment
// variables; run with -h for the list.
package main
