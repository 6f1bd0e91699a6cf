package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

// Imports and exports: the organisation and residents signed on paper come
// in from CSV, with a dry run that lists every row; residents go out in the
// same columns.

// importer runs one kind of import on a file for the caller.
type importer func(a *API, c *gin.Context, file io.Reader, dryRun bool) ([]storage.ImportLine, error)

func importOrganisation(a *API, c *gin.Context, file io.Reader, dryRun bool) ([]storage.ImportLine, error) {
	p, only := caller(c), ""
	if !p.Scope.Whole() {
		in, err := a.DB.InstitutionByID(c.Request.Context(), p.Scope.Institution)
		if err != nil {
			return nil, err
		}
		only = in.Code
	}
	return flows.ImportOrganisation(c.Request.Context(), a.DB, file, dryRun, p.Name, only)
}

func importResidents(a *API, c *gin.Context, file io.Reader, dryRun bool) ([]storage.ImportLine, error) {
	p := caller(c)
	inst := importInstitution(c)
	if p.Scope.Whole() {
		if err := a.DB.Visible(c.Request.Context(), p.Scope, storage.ThingInstitution, inst); err != nil {
			return nil, errNoInstitution
		}
	}
	return flows.ImportResidents(c.Request.Context(), a.DB, a.Sealer, file, flows.ResidentImport{Institution: inst,
		Actor: p.Name, DryRun: dryRun, Now: a.now()})
}

// importInstitution is the institution residents are imported into: the
// caller's own, or for city staff the one named in the console's form or
// the API's query string.
func importInstitution(c *gin.Context) int64 {
	p := caller(c)
	switch {
	case !p.Scope.Whole():
		return p.Scope.Institution
	case c.ContentType() == "multipart/form-data":
		return formID(c.PostForm("institution"))
	}
	return formID(c.Query("institution"))
}

// errNoInstitution says city staff did not name the institution to import into.
var errNoInstitution = errors.New("name the institution the residents belong to (institution=ID)")

var importers = map[string]importer{"organisation": importOrganisation, "residents": importResidents}

// importAPI takes a CSV file as the request body: POST
// /admin/api/import/residents?dry_run=true.
func (a *API) importAPI(c *gin.Context) {
	run, ok := importers[c.Param("what")]
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": "import organisation or residents"})
		return
	}
	dryRun := c.Query("dry_run") != "false"
	lines, err := run(a, c, http.MaxBytesReader(c.Writer, c.Request.Body, flows.MaxCSV), dryRun)
	a.recordImport(c, c.Param("what"), dryRun, lines, err)
	if lines == nil {
		lines = []storage.ImportLine{}
	}
	var bad *flows.FileError
	switch {
	case errors.Is(err, storage.ErrImportRejected):
		c.JSON(http.StatusUnprocessableEntity, gin.H{"dry_run": dryRun, "written": false, "lines": lines, "error": err.Error()})
	case errors.As(err, &bad), errors.Is(err, errNoInstitution):
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
	case err != nil:
		a.fail(c, err)
	default:
		c.JSON(http.StatusOK, gin.H{"dry_run": dryRun, "written": !dryRun, "lines": lines})
	}
}

// exportResidents answers the live contracts in scope as a CSV file.
func (a *API) exportResidents(c *gin.Context) {
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="residents-`+a.now().In(flows.Shanghai).Format("20060102")+`.csv"`)
	c.Header("Cache-Control", "no-store")
	if err := flows.ExportResidents(c.Request.Context(), a.DB, caller(c).Scope, c.Writer); err != nil {
		a.Log.Error("export failed", "err", err)
	}
}

func (a *API) importPage(c *gin.Context) {
	a.render(c, http.StatusOK, "import", gin.H{"OrgHeader": flows.OrgHeader, "ResidentHeader": flows.ResidentHeader,
		"Institutions": a.institutions(c)})
}

// importFilePage runs an uploaded file through an import, a dry run unless
// the form says otherwise, and shows every row's outcome.
func (a *API) importFilePage(c *gin.Context) {
	what := c.Param("what")
	run, ok := importers[what]
	if !ok {
		a.pageFail(c, storage.ErrNotFound)
		return
	}
	data := gin.H{"OrgHeader": flows.OrgHeader, "ResidentHeader": flows.ResidentHeader, "Institutions": a.institutions(c), "What": what}
	header, err := c.FormFile("file")
	if err != nil {
		data["Problem"] = "请选择要导入的 CSV 文件。"
		a.render(c, http.StatusBadRequest, "import", data)
		return
	}
	f, err := header.Open()
	if err != nil {
		a.pageFail(c, err)
		return
	}
	defer f.Close()
	dryRun := c.PostForm("apply") != "yes"
	lines, err := run(a, c, f, dryRun)
	a.recordImport(c, what, dryRun, lines, err)
	data["Lines"], data["DryRun"] = lines, dryRun
	status := http.StatusOK
	switch {
	case errors.Is(err, storage.ErrImportRejected):
		status, data["Problem"] = http.StatusUnprocessableEntity, "有行未通过检查（见下表），没有导入任何数据。请修改后重新上传。"
	case errors.As(err, new(*flows.FileError)):
		status, data["Problem"] = http.StatusBadRequest, "文件无法读取："+err.Error()
	case errors.Is(err, errNoInstitution):
		status, data["Problem"] = http.StatusBadRequest, "请选择机构。"
	case err != nil:
		a.pageFail(c, err)
		return
	case dryRun:
		data["Flash"] = "检查通过，尚未导入。确认无误后勾选“正式导入”再上传一次。"
	default:
		data["Flash"] = "已导入。"
	}
	a.render(c, status, "import", data)
}

// recordImport audits an import that wrote something.
func (a *API) recordImport(c *gin.Context, what string, dryRun bool, lines []storage.ImportLine, err error) {
	if dryRun || err != nil {
		return
	}
	counts := map[string]int{}
	for _, l := range lines {
		counts[l.Action]++
	}
	inst := caller(c).Scope.Institution
	if what == "residents" {
		inst = importInstitution(c)
	}
	a.record(c, inst, "import."+what, fmt.Sprintf("%d 行", len(lines)),
		fmt.Sprintf("新增 %d，更新 %d，未变 %d", counts["create"], counts["update"], counts["unchanged"]))
}
