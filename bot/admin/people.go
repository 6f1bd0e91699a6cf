package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

// The API's residents, contracts, organisation and staff: what the
// console's pages do, for scripts.

type contractJSON struct {
	Number      string   `json:"number"`
	Status      string   `json:"status"`
	ResidentID  int64    `json:"resident_id"`
	Resident    string   `json:"resident"`
	Community   string   `json:"community"`
	TeamID      int64    `json:"team_id"`
	Team        string   `json:"team"`
	DoctorID    int64    `json:"doctor_id"`
	Doctor      string   `json:"doctor"`
	DoctorBound bool     `json:"doctor_bound"`
	TermEnd     string   `json:"term_end"`
	Packages    []string `json:"packages"`
}

func contractsJSON(list []storage.ContractView) []contractJSON {
	out := make([]contractJSON, 0, len(list))
	for _, c := range list {
		j := contractJSON{Number: c.Number, Status: c.Status, ResidentID: c.ResidentID, Resident: c.ResidentName,
			Community: c.CommunityName, TeamID: c.TeamID, Team: c.TeamName, DoctorID: c.DoctorID, Doctor: c.DoctorName,
			DoctorBound: c.DoctorOpenID.Valid, TermEnd: c.TermEnd.String, Packages: []string{}}
		for _, p := range c.Packages {
			j.Packages = append(j.Packages, p.Name)
		}
		out = append(out, j)
	}
	return out
}

// residents lists residents by a search in the query string, which never
// holds a whole ID number or phone.
func (a *API) residents(c *gin.Context) {
	var s residentSearch
	if err := c.ShouldBindQuery(&s); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "community and team are IDs"})
		return
	}
	a.listResidents(c, s, false)
}

// searchResidents lists residents by a search in a JSON body: POST
// /admin/api/residents/search {"q": "110105…"}.
func (a *API) searchResidents(c *gin.Context) {
	var s residentSearch
	if err := c.ShouldBindJSON(&s); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"q": "…", "community": ID, "team": ID, "status": "…"}`})
		return
	}
	a.listResidents(c, s, true)
}

func (a *API) listResidents(c *gin.Context, s residentSearch, inBody bool) {
	pg, ok := page(c)
	if !ok {
		return
	}
	f := a.filter(s)
	if wholeNumber(f) && !inBody {
		c.JSON(http.StatusBadRequest, gin.H{"error": "a whole ID number or phone goes in the body of POST /admin/api/residents/search, never in a URL"})
		return
	}
	items, total, err := a.DB.ListResidents(c.Request.Context(), caller(c).Scope, f, pg)
	list(c, items, total, err, a)
}

// residentFile is what the console and the API show of one resident: who
// they are (masked), their contracts and their latest 50 appointments.
type residentFile struct {
	Resident  storage.ResidentRow
	Contracts []storage.ContractView
	Visits    []storage.AppointmentView
	Pushes    []storage.PushToResident // the latest 50 to the WeChat user who manages them
	Referrals []flows.ReferralView
}

// residentFile reads the resident named in the path, if in scope.
func (a *API) residentFile(c *gin.Context) (residentFile, error) {
	ctx := c.Request.Context()
	var f residentFile
	var err error
	if f.Resident, err = a.DB.Resident(ctx, caller(c).Scope, formID(c.Param("id"))); err != nil {
		return f, err
	}
	if f.Contracts, err = a.DB.ContractsOfResident(ctx, f.Resident.ID); err != nil {
		return f, err
	}
	if f.Visits, err = a.DB.AppointmentsOfResident(ctx, f.Resident.ID, 50); err != nil {
		return f, err
	}
	if f.Referrals, err = flows.ResidentReferrals(ctx, a.DB, a.Sealer, f.Resident.ID); err != nil {
		return f, err
	}
	f.Pushes, err = a.DB.PushesToResident(ctx, f.Resident.ID, 50)
	return f, err
}

func (a *API) resident(c *gin.Context) {
	file, err := a.residentFile(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	r, contracts, visits := file.Resident, file.Contracts, file.Visits
	type visitJSON struct {
		ID       int64     `json:"id"`
		Kind     string    `json:"kind"`
		Status   string    `json:"status"`
		StartsAt time.Time `json:"starts_at"`
		Doctor   string    `json:"doctor"`
	}
	vs := []visitJSON{}
	for _, v := range visits {
		vs = append(vs, visitJSON{ID: v.ID, Kind: v.Kind, Status: v.Status, StartsAt: v.StartsAt, Doctor: v.DoctorName})
	}
	out := gin.H{"resident": r, "contracts": contractsJSON(contracts), "appointments": vs, "referrals": file.Referrals, "pushes": file.Pushes}
	if may(caller(c).Role, toCare) { // as the console's page shows it to those who may change it
		due, _, err := flows.OpenDueDate(a.Sealer, r.DueDateSealed)
		if err != nil {
			a.fail(c, err)
			return
		}
		out["due_date"] = dayOrEmpty(due)
	}
	c.JSON(http.StatusOK, out)
}

// unmask answers a resident's full ID number and phone to a caller who
// states why ({"reason": "…"}); the audit log has the reading first.
func (a *API) unmask(c *gin.Context) {
	var in struct {
		Reason string `json:"reason"`
	}
	_ = c.ShouldBindJSON(&in)
	reason, ok := unmaskReason(in.Reason)
	if !ok {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"reason": "why you need it", 4 to 200 characters}`})
		return
	}
	id, phone, err := a.reveal(c, reason)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"id_number": id, "phone": phone})
}

func (a *API) contracts(c *gin.Context) {
	pg, ok := page(c)
	if !ok {
		return
	}
	switch c.Query("status") {
	case "", storage.ContractPending, storage.ContractActive, storage.ContractDeclined, storage.ContractCancelled, storage.ContractExpired:
	default:
		c.JSON(http.StatusBadRequest, gin.H{"error": "status must be pending, active, declined, cancelled or expired"})
		return
	}
	items, total, err := a.DB.ListContracts(c.Request.Context(), caller(c).Scope, c.Query("status"), pg)
	list(c, contractsJSON(items), total, err, a)
}

// answer confirms or declines a sign request in its doctor's name:
// {"answer": "confirm"} or {"answer": "decline", "reason": "…"}.
func (a *API) answer(c *gin.Context) {
	ctx, p, number := c.Request.Context(), caller(c), c.Param("number")
	var in struct {
		Answer string `json:"answer"`
		Reason string `json:"reason"`
	}
	if c.ShouldBindJSON(&in) != nil || (in.Answer != "confirm" && in.Answer != "decline") ||
		(in.Answer == "decline" && strings.TrimSpace(in.Reason) == "") {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"answer": "confirm"} or {"answer": "decline", "reason": "…"}`})
		return
	}
	if err := a.DB.Visible(ctx, p.Scope, storage.ThingContract, number); err != nil {
		a.fail(c, err)
		return
	}
	contract, err := a.DB.ContractByNumber(ctx, number)
	if err != nil {
		a.fail(c, err)
		return
	}
	reason := ""
	if in.Answer == "decline" {
		reason = strings.TrimSpace(in.Reason)
	}
	termEnd, err := flows.AnswerSignRequest(ctx, a.DB, contract, "staff:"+p.Name, reason, a.now())
	if err == nil {
		a.recordOn(c, storage.ThingContract, number, "contract.answer", number, answeredFor(contract.DoctorName, reason))
	}
	if errors.Is(err, storage.ErrStatusChanged) {
		c.JSON(http.StatusConflict, gin.H{"error": "the contract is not waiting for an answer"})
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"number": number, "answer": in.Answer, "term_end": termEnd})
}

// institutionOf is where a new community, doctor or team goes: the
// caller's institution, or for city staff the "institution" they name.
func (a *API) institutionOf(c *gin.Context, named int64) (int64, bool) {
	p := caller(c)
	if !p.Scope.Whole() {
		return p.Scope.Institution, true
	}
	if err := a.DB.Visible(c.Request.Context(), p.Scope, storage.ThingInstitution, named); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "name the institution (its id) the new row belongs to"})
		return 0, false
	}
	return named, true
}

func (a *API) createCommunity(c *gin.Context) {
	var in struct {
		Institution int64  `json:"institution"`
		Town        string `json:"town"`
		Name        string `json:"name"`
		Population  int    `json:"population"`
	}
	if c.ShouldBindJSON(&in) != nil || strings.TrimSpace(in.Name) == "" || strings.TrimSpace(in.Town) == "" || in.Population < 0 {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"name": "…", "town": "…", "population": 0}`})
		return
	}
	inst, ok := a.institutionOf(c, in.Institution)
	if !ok {
		return
	}
	id, err := a.DB.CreateCommunity(c.Request.Context(), storage.Community{InstitutionID: inst, Town: strings.TrimSpace(in.Town),
		Name: strings.TrimSpace(in.Name)}, in.Population, caller(c).Name)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

func (a *API) createDoctor(c *gin.Context) {
	var in struct {
		Institution int64  `json:"institution"`
		Name        string `json:"name"`
		Title       string `json:"title"`
	}
	if c.ShouldBindJSON(&in) != nil || strings.TrimSpace(in.Name) == "" {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"name": "…", "title": "…"}`})
		return
	}
	inst, ok := a.institutionOf(c, in.Institution)
	if !ok {
		return
	}
	id, err := a.DB.CreateDoctor(c.Request.Context(), storage.Doctor{InstitutionID: inst, Name: strings.TrimSpace(in.Name),
		Title: strings.TrimSpace(in.Title)}, caller(c).Name)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

func (a *API) createTeam(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	var in struct {
		Name        string           `json:"name"`
		Doctor      int64            `json:"doctor"`
		Communities []int64          `json:"communities"`
		Members     []storage.Member `json:"members"`
	}
	if c.ShouldBindJSON(&in) != nil || strings.TrimSpace(in.Name) == "" || len(in.Communities) == 0 {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"name": "…", "doctor": ID, "communities": [ID, …], "members": [{"role": "护士", "name": "…"}]}`})
		return
	}
	if err := a.DB.Visible(ctx, p.Scope, storage.ThingDoctor, in.Doctor); err != nil {
		a.fail(c, err)
		return
	}
	roles, err := flows.TeamRoles(ctx, a.DB)
	if err == nil {
		err = flows.CheckMembers(roles, in.Members)
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	inst, err := a.DB.DoctorInstitution(ctx, in.Doctor)
	if err != nil {
		a.fail(c, err)
		return
	}
	id, err := a.DB.CreateTeam(ctx, inst, storage.NewTeam{Name: strings.TrimSpace(in.Name), Members: in.Members}, in.Doctor, in.Communities, p.Name)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

func (a *API) staff(c *gin.Context) {
	if pg, ok := page(c); ok {
		items, total, err := a.DB.ListStaff(c.Request.Context(), caller(c).Scope, pg)
		list(c, items, total, err, a)
	}
}

// createStaffAPI makes an account: {"username", "role", "password",
// "institution" (city staff only), "doctor" (doctor accounts)}.
func (a *API) createStaffAPI(c *gin.Context) {
	var in struct {
		Username    string `json:"username"`
		Role        string `json:"role"`
		Password    string `json:"password"`
		Institution int64  `json:"institution"`
		Doctor      int64  `json:"doctor"`
	}
	if c.ShouldBindJSON(&in) != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"username", "role", "password", "institution", "doctor"}`})
		return
	}
	p := caller(c)
	id, err := CreateStaff(c.Request.Context(), a.DB, p.Scope, NewStaff{Username: in.Username, Role: storage.Role(in.Role),
		Institution: in.Institution, Doctor: in.Doctor, Password: in.Password}, p.Name)
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": id})
}

// changeStaff resets a password ({"password": "…"}) or disables or enables
// an account ({"disabled": true}).
func (a *API) changeStaff(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	var in struct {
		Password *string `json:"password"`
		Disabled *bool   `json:"disabled"`
	}
	if err != nil || c.ShouldBindJSON(&in) != nil || (in.Password == nil) == (in.Disabled == nil) {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"password": "…"} or {"disabled": true|false}`})
		return
	}
	if in.Password != nil {
		if err := CheckPassword(*in.Password); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		err = a.DB.SetStaffPassword(ctx, p.Scope, id, HashPassword(*in.Password), p.Name)
	} else {
		err = a.DB.SetStaffDisabled(ctx, p.Scope, id, *in.Disabled, p.Name)
	}
	if errors.Is(err, storage.ErrLastAdmin) {
		c.JSON(http.StatusConflict, gin.H{"error": "the institution's last enabled admin cannot be disabled"})
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": id})
}

// handover hands a team's residents to another team: {"to": ID, "retire": true}.
func (a *API) handover(c *gin.Context) {
	var in struct {
		To     int64 `json:"to"`
		Retire bool  `json:"retire"`
	}
	if c.ShouldBindJSON(&in) != nil || in.To == 0 {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"to": TEAM_ID, "retire": true|false}`})
		return
	}
	p := caller(c)
	h, err := flows.HandOverTeam(c.Request.Context(), a.DB, p.Scope, formID(c.Param("id")), in.To, in.Retire, p.Name, a.now())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"contracts": len(h.Contracts), "appointments": len(h.Appointments)})
}

// population records a community's counts: {"population": N,
// "priority_population": {"elderly": N, …}, "counted_on": "2026-10-31"}.
func (a *API) population(c *gin.Context) {
	var in struct {
		Population int            `json:"population"`
		Groups     map[string]int `json:"priority_population"`
		CountedOn  string         `json:"counted_on"`
	}
	if c.ShouldBindJSON(&in) != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"population": N, "priority_population": {"elderly": N}, "counted_on": "YYYY-MM-DD"}`})
		return
	}
	p := caller(c)
	err := flows.SetPopulation(c.Request.Context(), a.DB, p.Scope, formID(c.Param("id")), in.Population, in.Groups, in.CountedOn, a.now(), p.Name)
	var refusal *flows.Refusal
	if errors.As(err, &refusal) {
		c.JSON(http.StatusBadRequest, gin.H{"error": refusal.Reason})
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": formID(c.Param("id"))})
}

// setDueDate records a resident's expected due date from JSON {"due":
// "2027-05-20"}; "" clears it.
func (a *API) setDueDate(c *gin.Context) {
	p := caller(c)
	var body struct {
		Due *string `json:"due"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Due == nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": `the body must be JSON {"due": "YYYY-MM-DD"}; "" clears it`})
		return
	}
	said, err := flows.SetDueDate(c.Request.Context(), a.DB, a.Sealer, p.Scope, formID(c.Param("id")), *body.Due, p.Name, a.now())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"due": *body.Due, "message": said})
}

// unmaskReason is the reason staff give for reading a resident's details
// in full, when it says something: 4 to 200 characters.
func unmaskReason(s string) (string, bool) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	return s, n >= 4 && n <= 200
}

// reveal reads the full ID number and phone of the resident named in the
// path, if in the caller's scope; storage audits the reading first.
func (a *API) reveal(c *gin.Context, reason string) (id, phone string, err error) {
	p := caller(c)
	s, err := a.DB.ResidentSecrets(c.Request.Context(), p.Scope, formID(c.Param("id")), p.Name, reason)
	if err != nil {
		return "", "", err
	}
	return a.open(s)
}

// open reads a resident's sealed ID number and phone (none for some signed
// at the desk).
func (a *API) open(s storage.SealedResident) (id, phone string, err error) {
	if id, err = a.Sealer.Open("id_number", s.IDSealed); err != nil || s.PhoneSealed == "" {
		return id, "", err
	}
	phone, err = a.Sealer.Open("phone", s.PhoneSealed)
	return id, phone, err
}

// residentSearch is a residents search as the console's form, the API's
// query string or a search body gives it.
type residentSearch struct {
	Q         string `form:"q" json:"q"`
	Community int64  `form:"community" json:"community"`
	Team      int64  `form:"team" json:"team"`
	Status    string `form:"status" json:"status"`
	Group     string `form:"group" json:"group"` // a priority group's code
}

// filter turns the search into storage's filter: a whole ID number or
// phone is looked up by its keyed hash, never compared in clear, and so is
// a declared priority group. A group the vocabulary does not know finds
// no one.
func (a *API) filter(s residentSearch) storage.ResidentFilter {
	f := storage.ResidentFilter{Query: strings.TrimSpace(s.Q), CommunityID: s.Community, TeamID: s.Team, Status: s.Status}
	if s.Group != "" && !flows.FilterByGroup(&f, a.Sealer, s.Group, a.now()) {
		f.GroupTag = "unknown"
	}
	switch q := strings.NewReplacer(" ", "", "-", "").Replace(f.Query); {
	case len(q) == 18:
		f.IDHash = a.Sealer.Hash("id_number", flows.NormalizeID(q))
	case len(q) >= 10 && strings.Trim(q, "0123456789") == "":
		f.PhoneHash = a.Sealer.Hash("phone", q)
	}
	return f
}

// wholeNumber reports whether a search names a whole ID number or phone,
// which travels in a request's body, never in a URL that browsers keep in
// their history and proxies write to their logs.
func wholeNumber(f storage.ResidentFilter) bool { return f.IDHash != "" || f.PhoneHash != "" }
