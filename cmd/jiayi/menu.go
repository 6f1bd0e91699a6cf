package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/jiayi-health/jiayi/bot/config"
	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

const menuUsage = `usage: jiayi menu show | push

show  prints the custom menu of templates/menu.yaml as JSON
push  sends it to the Official Account (production: JIAYI_WECHAT_* set);
      WeChat shows it to followers within minutes
`

// menuCommand shows the custom menu or pushes it to WeChat.
func menuCommand(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) int {
	if len(args) != 1 || (args[0] != "show" && args[0] != "push") {
		fmt.Fprint(stderr, menuUsage)
		return 2
	}
	buttons, err := flows.Menu()
	if err != nil {
		fmt.Fprintln(stderr, "jiayi menu:", err)
		return 1
	}
	if args[0] == "show" {
		out, _ := json.MarshalIndent(buttons, "", "  ")
		fmt.Fprintln(stdout, string(out))
		return 0
	}
	if cfg.Sandbox() {
		fmt.Fprintln(stderr, "jiayi menu push: sandbox mode (JIAYI_WECHAT_SECRET is empty) has no account to push to; "+
			"the simulator shows templates/menu.yaml as it is")
		return 1
	}
	rdb, err := storage.OpenRedis(cfg.RedisURL)
	if err != nil {
		fmt.Fprintln(stderr, "jiayi menu push:", err)
		return 1
	}
	defer rdb.Close()
	wechat.UseTransport(http.DefaultTransport)
	if cfg.WeChatAPI != "" {
		wechat.UseAPIBase(cfg.WeChatAPI)
	}
	client := wechat.NewClient(wechat.Account{AppID: cfg.AppID, Secret: cfg.Secret, Token: cfg.Token, AESKey: cfg.AESKey}, rdb, "jiayi")
	if err := client.SetMenu(ctx, buttons); err != nil {
		fmt.Fprintln(stderr, "jiayi menu push: WeChat refused the menu:", err)
		return 1
	}
	fmt.Fprintln(stdout, "menu pushed: WeChat shows it to followers within minutes")
	return 0
}
