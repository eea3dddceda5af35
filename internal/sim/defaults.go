package sim

// DefaultComponents returns Brupop's real components, wired for the simulated cluster.
func DefaultComponents() *Components {
	return &Components{}
}
