package admin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

// Signing at the desk: a staff member signs a resident who has no
// smartphone, through the chat's rules, the consent recorded as on paper.

func (a *API) deskPage(c *gin.Context) {
	a.showDesk(c, http.StatusOK, gin.H{})
}

func (a *API) showDesk(c *gin.Context, status int, data gin.H) {
	ctx, p := c.Request.Context(), caller(c)
	teams, _, err := a.DB.ListTeams(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	communities, _, err := a.DB.ListCommunities(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	catalog, err := a.DB.Catalog(ctx)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	groups, err := flows.DeclarableGroups(ctx, a.DB)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	data["Teams"], data["Communities"], data["Packages"], data["Groups"] = teams, communities, catalog.Packages, groups
	if _, ok := data["Request"]; !ok {
		data["Request"] = newToken()
	}
	a.render(c, status, "desk", data)
}

// deskSign signs the resident the form describes.
func (a *API) deskSign(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	form := gin.H{"Name": c.PostForm("name"), "IDNumber": c.PostForm("id_number"), "Phone": c.PostForm("phone"),
		"Community": formID(c.PostForm("community")), "Team": formID(c.PostForm("team")),
		"Chosen": c.PostFormArray("package"), "Declared": c.PostFormArray("group")}
	refuse := func(why string) {
		a.showDesk(c, http.StatusBadRequest, gin.H{"Form": form, "Problem": why, "Request": c.PostForm("request")})
	}
	if len(c.PostForm("request")) < 16 {
		refuse("页面已过期，请重新打开代签约页面再填写。")
		return
	}
	if c.PostForm("consent") != "yes" {
		refuse("请先请居民（或监护人）在纸质知情同意书上签字，并勾选确认。")
		return
	}
	teamID, communityID := formID(c.PostForm("team")), formID(c.PostForm("community"))
	errTeam := a.DB.Visible(ctx, p.Scope, storage.ThingTeam, teamID)
	errCommunity := a.DB.Visible(ctx, p.Scope, storage.ThingCommunity, communityID)
	if err := errors.Join(errTeam, errCommunity); err != nil {
		refuse("请选择本机构的社区和为其服务的团队。")
		return
	}
	inst, err := a.DB.InstitutionOf(ctx, storage.ThingTeam, teamID)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	number, err := flows.SignAtDesk(ctx, a.DB, a.Sealer, flows.DeskSigning{Name: c.PostForm("name"), IDNumber: c.PostForm("id_number"),
		Phone: c.PostForm("phone"), CommunityID: communityID, TeamID: teamID, Packages: c.PostFormArray("package"),
		Groups: c.PostFormArray("group"), Request: c.PostForm("request")}, flows.ResidentImport{Institution: inst, Actor: p.Name, Now: a.now()})
	var refusal *flows.Refusal
	if errors.As(err, &refusal) {
		refuse(refusal.Reason)
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	contract, err := a.DB.ContractByNumber(ctx, number)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.record(c, inst, "contract.desk_sign", number, "窗口签约，纸质知情同意")
	done(c, "/admin/residents/"+strconv.FormatInt(contract.ResidentID, 10),
		"已为 "+strings.TrimSpace(c.PostForm("name"))+" 签约，协议号 "+number+"，到期 "+contract.TermEnd.String+"。")
}
