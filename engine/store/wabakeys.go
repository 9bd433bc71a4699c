package store

import (
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// WithWABANumber names the WhatsApp business number (a phone_number_id) that
// dialogs keyed before fixit knew several numbers were written to: the first one
// configured (WABA_PHONE_NUMBER_ID). Migration 5 converts their keys with it.
func WithWABANumber(phoneNumberID string) Option {
	return func(s *GormStore) { s.wabaNumber = strings.TrimSpace(phoneNumberID) }
}

// ErrWABANumberNeeded means the database holds WhatsApp keys of the form
// waba:<wa_id>, written before fixit knew several business numbers, and no number
// was given to convert them with (WithWABANumber).
var ErrWABANumberNeeded = fmt.Errorf("the database has WhatsApp dialogs keyed by the customer alone (waba:<wa_id>); " +
	"set WABA_PHONE_NUMBER_ID to the business number they were written to, so that migration 5 can key them " +
	"waba:<phone_number_id>:<wa_id>")

// oldWABAKey matches, in SQL, a key of the form waba:<wa_id> (a wa_id or a
// business-scoped user id holds no colon; the new form holds two); oldWABAKeys
// matches a JSON list of keys (an event's) that holds a WhatsApp key, all of the
// old form while migration 5 has not run.
const (
	oldWABAKey  = `key LIKE 'waba:%' AND key NOT LIKE 'waba:%:%'`
	oldWABAKeys = `keys LIKE '%"waba:%'`
)

// convertWABAKeys is migration 5's conversion: every correlation key waba:<wa_id>
// becomes waba:<number>:<wa_id>, bound to dialogs and in stored events alike (an
// unrouted event may be redriven), and WhatsApp dialogs get number as their
// business number. With no number configured, a database without such keys
// migrates as is and one with them is refused with ErrWABANumberNeeded: guessing
// a number would send replies from the wrong one.
func convertWABAKeys(s *GormStore, tx *gorm.DB) error {
	number := s.wabaNumber
	if number == "" {
		var n int64
		if err := tx.Raw(`SELECT (SELECT COUNT(*) FROM dialog_keys WHERE ` + oldWABAKey + `) +
			(SELECT COUNT(*) FROM events WHERE ` + oldWABAKeys + `)`).Scan(&n).Error; err != nil {
			return fmt.Errorf("count old WhatsApp keys: %w", err)
		}
		if n > 0 {
			return ErrWABANumberNeeded
		}
		return nil
	}
	if strings.Trim(number, "0123456789") != "" {
		return fmt.Errorf("convert WhatsApp keys: %q is not a phone number id", number)
	}
	prefix := "waba:" + number + ":"
	for _, stmt := range []struct {
		what, sql string
		arg       string
	}{
		{"convert WhatsApp keys", `UPDATE dialog_keys SET key = CAST(? AS TEXT) || substr(key, 6) WHERE ` + oldWABAKey, prefix},
		{"convert the WhatsApp keys of events", `UPDATE events SET keys = replace(keys, '"waba:', CAST(? AS TEXT)) WHERE ` +
			oldWABAKeys, `"` + prefix},
		{"set the business number of WhatsApp dialogs", `UPDATE dialogs SET business_number = CAST(? AS TEXT)
			WHERE channel = 'waba' AND business_number = ''`, number},
	} {
		if err := tx.Exec(stmt.sql, stmt.arg).Error; err != nil {
			return fmt.Errorf("%s: %w", stmt.what, err)
		}
	}
	return nil
}
