package flows

import (
	"context"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// reminderSettings is 提醒设置: seasonal and personal reminders on and off.
type reminderSettings struct{}

func (reminderSettings) title() string { return "提醒设置" }

func (reminderSettings) help(*State) (string, error) {
	return templates.Message("reminder_settings", storage.ReminderSettings{Seasonal: true, Personal: true})
}

func (reminderSettings) start(ctx context.Context, e *Engine, st *State, in Inbound) ([]string, error) {
	s, err := e.DB.Reminders(ctx, in.OpenID)
	if err != nil {
		return nil, err
	}
	st.Step = "toggle"
	return say("reminder_settings", s)
}

func (r reminderSettings) answer(ctx context.Context, e *Engine, st *State, said string, in Inbound) ([]string, error) {
	s, err := e.DB.Reminders(ctx, in.OpenID)
	if err != nil {
		return nil, err
	}
	var what string
	var on bool
	switch said {
	case "1":
		s.Seasonal = !s.Seasonal
		what, on = "季节健康提示", s.Seasonal
	case "2":
		s.Personal = !s.Personal
		what, on = "个人健康提醒", s.Personal
	default:
		return say("reminder_settings", s)
	}
	if err := e.DB.SetReminders(ctx, in.OpenID, s, SeasonalKinds, PersonalKinds); err != nil {
		return nil, err
	}
	saved, err := templates.Message("reminder_settings_saved", map[string]any{"What": what, "On": on})
	if err != nil {
		return nil, err
	}
	list, err := templates.Message("reminder_settings", s)
	return []string{saved + "\n" + list}, err
}
