package admin

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/storage"
)

// NewStaff is an account to create, as a page or the command line asks.
type NewStaff struct {
	Username    string
	Role        storage.Role
	Institution int64 // 0 for city staff
	Doctor      int64 // the doctor record of a doctor account
	Password    string
}

// CreateStaff checks and creates an account on behalf of creator (whose
// scope bounds what they may create) and returns its ID. The messages of
// its errors are fit to show staff.
func CreateStaff(ctx context.Context, db *storage.DB, creator storage.Scope, s NewStaff, actor string) (int64, error) {
	s.Username = NormaliseUsername(s.Username)
	if err := CheckUsername(s.Username); err != nil {
		return 0, errors.New("用户名须为 2 到 32 位小写字母、数字或 _ . -")
	}
	if err := CheckPassword(s.Password); err != nil {
		return 0, err
	}
	switch s.Role {
	case storage.RoleAdmin, storage.RoleViewer, storage.RoleDoctor:
	case storage.RoleCity:
		if !creator.Whole() {
			return 0, errors.New("只有市级账号可以创建市级账号")
		}
		s.Institution = 0
	default:
		return 0, errors.New("请选择角色")
	}
	if !creator.Whole() {
		s.Institution = creator.Institution
	}
	if s.Role != storage.RoleCity {
		if err := db.Visible(ctx, creator, storage.ThingInstitution, s.Institution); err != nil {
			return 0, errors.New("请选择机构")
		}
	}
	row := storage.Staff{Username: s.Username, Role: s.Role, PasswordHash: HashPassword(s.Password),
		InstitutionID: sql.NullInt64{Int64: s.Institution, Valid: s.Role != storage.RoleCity}}
	if s.Role == storage.RoleDoctor {
		if err := db.Visible(ctx, storage.Scope{Institution: s.Institution}, storage.ThingDoctor, s.Doctor); err != nil {
			return 0, errors.New("医生账号须关联本机构的一位医生")
		}
		row.DoctorID = sql.NullInt64{Int64: s.Doctor, Valid: true}
	}
	id, err := db.CreateStaff(ctx, row, actor)
	if errors.Is(err, storage.ErrExists) {
		return 0, errors.New("用户名 " + s.Username + " 已被使用")
	}
	return id, err
}

func (a *API) staffPage(c *gin.Context) {
	a.showStaff(c, http.StatusOK, "")
}

func (a *API) showStaff(c *gin.Context, status int, problem string) {
	ctx, p, pg := c.Request.Context(), caller(c), pageOf(c)
	rows, total, err := a.DB.ListStaff(ctx, p.Scope, pg)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	doctors, _, err := a.DB.ListDoctors(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, status, "staff", gin.H{"Rows": rows, "Pager": pager(c, pg, total), "Doctors": doctors,
		"Institutions": a.institutions(c), "Problem": problem})
}

func (a *API) createStaffPage(c *gin.Context) {
	p := caller(c)
	_, err := CreateStaff(c.Request.Context(), a.DB, p.Scope, NewStaff{Username: c.PostForm("username"), Role: storage.Role(c.PostForm("role")),
		Institution: formID(c.PostForm("institution")), Doctor: formID(c.PostForm("doctor")), Password: c.PostForm("password")}, p.Name)
	if err != nil {
		a.showStaff(c, http.StatusBadRequest, err.Error())
		return
	}
	done(c, "/admin/staff", "已创建账号 "+NormaliseUsername(c.PostForm("username"))+"，请把初始密码当面告知本人。")
}

// changeStaffPage resets a staff member's password, or disables or enables
// the account; each ends the account's sessions.
func (a *API) changeStaffPage(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	id := formID(c.Param("id"))
	var err error
	switch c.PostForm("action") {
	case "password":
		if err = CheckPassword(c.PostForm("password")); err != nil {
			a.showStaff(c, http.StatusBadRequest, err.Error())
			return
		}
		err = a.DB.SetStaffPassword(ctx, p.Scope, id, HashPassword(c.PostForm("password")), p.Name)
	case "disable", "enable":
		err = a.DB.SetStaffDisabled(ctx, p.Scope, id, c.PostForm("action") == "disable", p.Name)
	default:
		a.showStaff(c, http.StatusBadRequest, "未知操作")
		return
	}
	if errors.Is(err, storage.ErrLastAdmin) {
		a.showStaff(c, http.StatusConflict, "这是本机构唯一启用的管理员账号，不能停用。")
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, "/admin/staff", "已保存，该账号已登录的会话已全部退出。")
}

func (a *API) passwordPage(c *gin.Context) {
	a.render(c, http.StatusOK, "password", gin.H{})
}

// changePasswordPage changes the caller's own password after checking the
// current one; every session of theirs ends, and this browser signs in anew.
func (a *API) changePasswordPage(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	if p.Staff == nil {
		a.render(c, http.StatusBadRequest, "password", gin.H{"Problem": "管理令牌没有密码。"})
		return
	}
	if !VerifyPassword(p.Staff.PasswordHash, c.PostForm("current")) {
		a.render(c, http.StatusBadRequest, "password", gin.H{"Problem": "当前密码不对。"})
		return
	}
	if err := CheckPassword(c.PostForm("password")); err != nil {
		a.render(c, http.StatusBadRequest, "password", gin.H{"Problem": err.Error()})
		return
	}
	if c.PostForm("password") != c.PostForm("again") {
		a.render(c, http.StatusBadRequest, "password", gin.H{"Problem": "两次输入的新密码不一致。"})
		return
	}
	if err := a.DB.SetStaffPassword(ctx, p.Scope, p.Staff.ID, HashPassword(c.PostForm("password")), p.Name); err != nil {
		a.pageFail(c, err)
		return
	}
	setCookie(c, sessionCookie, "", -1)
	setCookie(c, flashCookie, "", -1)
	c.Redirect(http.StatusSeeOther, "/admin/login?changed=1")
}

func formInt(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("not a count")
	}
	return n, nil
}
