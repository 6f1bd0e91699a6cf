package flows

import (
	"errors"
	"fmt"

	"github.com/jiayi-health/jiayi/templates"
	"go.yaml.in/yaml/v3"
)

// MenuButton is one button of the account's custom menu: a group with
// buttons below it, or a button that sends Key as if it were typed.
type MenuButton struct {
	Name string       `yaml:"name" json:"name"`
	Key  string       `yaml:"key,omitempty" json:"key,omitempty"`
	Sub  []MenuButton `yaml:"sub,omitempty" json:"sub,omitempty"`
}

// WeChat's limits on a custom menu.
const (
	menuTop, menuBelow        = 3, 5
	menuTopBytes, menuSubByte = 16, 60
	menuKeyBytes              = 128
)

// Menu reads templates/menu.yaml and checks it against WeChat's limits.
func Menu() ([]MenuButton, error) { return parseMenu(templates.MenuFile()) }

func parseMenu(b []byte) ([]MenuButton, error) {
	var menu []MenuButton
	if err := yaml.Unmarshal(b, &menu); err != nil {
		return nil, fmt.Errorf("flows.Menu: templates/menu.yaml: %w", err)
	}
	if len(menu) == 0 || len(menu) > menuTop {
		return nil, fmt.Errorf("flows.Menu: %d buttons; WeChat takes 1 to %d", len(menu), menuTop)
	}
	var errs []error
	for _, top := range menu {
		if top.Name == "" || len(top.Name) > menuTopBytes {
			errs = append(errs, fmt.Errorf("button %q: a name of 1 to %d bytes", top.Name, menuTopBytes))
		}
		if (top.Key == "") == (len(top.Sub) == 0) || len(top.Sub) > menuBelow || len(top.Key) > menuKeyBytes {
			errs = append(errs, fmt.Errorf("button %q: a key, or 1 to %d buttons below it", top.Name, menuBelow))
		}
		for _, b := range top.Sub {
			if b.Name == "" || len(b.Name) > menuSubByte || b.Key == "" || len(b.Key) > menuKeyBytes || len(b.Sub) > 0 {
				errs = append(errs, fmt.Errorf("button %q under %q: a name of 1 to %d bytes and a key", b.Name, top.Name, menuSubByte))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("flows.Menu: templates/menu.yaml: %w", err)
	}
	return menu, nil
}
