package flows

import (
	"github.com/jiayi-health/jiayi/templates"
)

// reminders is 提醒设置: seasonal and personal reminders on and off.
var reminders = declare(&conversation[struct{}]{
	about: about{name: "reminders", title: "提醒设置", keywords: []string{"提醒设置"}, help: "reminder_help", version: 1, menu: true},
	steps: []step[struct{}]{{name: "toggle", ask: askReminders, take: takeReminderToggle}},
})

func askReminders(t *turn[struct{}]) (string, error) {
	s, err := t.e.DB.Reminders(t, t.in.OpenID)
	if err != nil {
		return "", err
	}
	return templates.Message("reminder_settings", s)
}

func takeReminderToggle(t *turn[struct{}], said string) (string, error) {
	s, err := t.e.DB.Reminders(t, t.in.OpenID)
	if err != nil {
		return "", err
	}
	var what string
	var on bool
	switch asNumber(said) {
	case "1":
		s.Seasonal = !s.Seasonal
		what, on = "健康知识提示", s.Seasonal
	case "2":
		s.Personal = !s.Personal
		what, on = "个人健康提醒", s.Personal
	default:
		return "", reaskWith("reminder_settings", s)
	}
	if err := t.e.DB.SetReminders(t, t.in.OpenID, s, SeasonalKinds, PersonalKinds); err != nil {
		return "", err
	}
	saved, err := templates.Message("reminder_settings_saved", map[string]any{"What": what, "On": on})
	if err != nil {
		return "", err
	}
	list, err := templates.Message("reminder_settings", s)
	if err != nil {
		return "", err
	}
	return "", reask{saved + "\n" + list}
}
