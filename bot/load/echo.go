package load

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/officialaccount"
	oaconfig "github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/officialaccount/message"
)

// Echo is the thinnest webhook silenceper/wechat makes on gin: it checks the
// signature, decrypts in safe mode, parses the message and answers its text
// back, sealed as it came. It does nothing a real reply needs (no replay
// memory, no dedupe, no lock, no state), which makes it the ceiling a
// webhook reaches on the machine: `jiayi load -echo` measures jiayi against
// it in the same run.
func Echo(token, appID, aesKey string) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	oa := officialaccount.NewOfficialAccount(&oaconfig.Config{AppID: appID, Token: token, EncodingAESKey: aesKey,
		Cache: cache.NewMemory()})
	handle := func(c *gin.Context) {
		srv := oa.GetServer(c.Request, c.Writer)
		srv.SetMessageHandler(func(m *message.MixMessage) *message.Reply {
			return &message.Reply{MsgType: message.MsgTypeText, MsgData: message.NewText(m.Content)}
		})
		if err := srv.Serve(); err != nil {
			c.String(http.StatusBadRequest, "bad request")
			return
		}
		if err := srv.Send(); err != nil {
			c.String(http.StatusInternalServerError, "reply not sent")
		}
	}
	r.GET("/wechat", handle)
	r.POST("/wechat", handle)
	return r
}
