// Package agentapi is the contract between the node agent and the Brupop API server: the paths,
// headers and bodies upstream Brupop v1.4.0 uses (so that old and new agents and servers
// interoperate during an upgrade of the operator itself), and the Client the agent calls it with.
package agentapi
