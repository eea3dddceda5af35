package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// RestoreTransaction is the host settings transaction that holds, pending, the update settings
// the agent replaced to pin a version. Committing it restores them; an agent commits it after
// preparing the update and, in case a previous agent was killed before that, when it starts.
const RestoreTransaction = "brupop-agent-restore"

// pin sets updates.version-lock to want (and ignore-waves, since the controller chose the
// version), first saving the current settings in RestoreTransaction unless a pin is already
// pending restoration there.
func (a *Agent) pin(ctx context.Context, want string) error {
	pending, err := a.cfg.Host.TransactionPending(ctx, RestoreTransaction)
	if err != nil {
		return fmt.Errorf("pin version %s: %w", want, err)
	}
	if !pending {
		prev, err := a.cfg.Host.UpdateSettings(ctx)
		if err != nil {
			return fmt.Errorf("pin version %s: %w", want, err)
		}
		if err := a.cfg.Host.StageUpdateSettings(ctx, RestoreTransaction, prev); err != nil {
			return fmt.Errorf("pin version %s: save settings: %w", want, err)
		}
	}
	if err := a.cfg.Host.SetUpdateSettings(ctx, hostapi.UpdateSettings{VersionLock: want, IgnoreWaves: true}); err != nil {
		return fmt.Errorf("pin version %s: %w", want, err)
	}
	return nil
}

// restoreSettings commits RestoreTransaction if anything is pending in it.
func (a *Agent) restoreSettings(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pending, err := a.cfg.Host.TransactionPending(ctx, RestoreTransaction)
	if err != nil {
		return fmt.Errorf("restore update settings: %w", err)
	}
	if !pending {
		return nil
	}
	if err := a.cfg.Host.CommitTransaction(ctx, RestoreTransaction); err != nil {
		return fmt.Errorf("restore update settings: %w", err)
	}
	a.log.Info("Restored the host's update settings")
	return nil
}
