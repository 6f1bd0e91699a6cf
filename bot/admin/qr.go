package admin

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/storage"
	"rsc.io/qr"
)

// doctorQR draws a doctor's QR code: a resident who scans it follows the
// account with the scene doctor_ID, and signing offers that doctor's team
// first. WeChat makes the code's URL once (in sandbox mode the stand-in
// does); the server draws the image, so a clinic intranet needs no outside
// access to show it. rsc.io/qr encodes it: a small, complete encoder.
func (a *API) doctorQR(c *gin.Context) {
	ctx := c.Request.Context()
	id, ok := a.id(c, storage.ThingDoctor)
	if !ok {
		return
	}
	url, err := a.DB.DoctorQR(ctx, id)
	if err != nil {
		a.fail(c, err)
		return
	}
	if url == "" {
		if a.QR == nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "no WeChat client to make QR codes"})
			return
		}
		if url, err = a.QR(ctx, fmt.Sprintf("doctor_%d", id)); err != nil {
			a.Log.Error("doctor QR code failed", "doctor", id, "err", err)
			c.JSON(http.StatusBadGateway, gin.H{"error": "WeChat did not make the QR code; try again later"})
			return
		}
		if url, err = a.DB.SetDoctorQR(ctx, id, url); err != nil {
			a.fail(c, err)
			return
		}
	}
	code, err := qr.Encode(url, qr.M)
	if err != nil {
		a.fail(c, err)
		return
	}
	code.Scale = 8
	c.Header("Cache-Control", "private, max-age=86400")
	c.Data(http.StatusOK, "image/png", code.PNG())
}
