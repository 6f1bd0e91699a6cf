package flows

import (
	"context"
	"regexp"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// After a done visit the resident's manager is asked for a score: a bare 1-5
// within a week answers the oldest open survey, and the survey conversation
// takes an optional comment.

// surveyWindow is how long after a visit a bare score counts as its answer.
const surveyWindow = 7 * 24 * time.Hour

// surveyData is the visit just scored, for its comment.
type surveyData struct {
	Appointment int64 `json:"appointment"`
	Score       int   `json:"score"`
}

// survey takes the comment after a score; a bare score starts it.
var survey = declare(&conversation[surveyData]{
	about: about{name: "survey", title: "满意度评价", help: "survey_comment", version: 1},
	steps: []step[surveyData]{{name: "comment", take: takeSurveyComment,
		ask: func(t *turn[surveyData]) (string, error) { return templates.Message("survey_scored", t.d.Score) }}},
})

func takeSurveyComment(t *turn[surveyData], said string) (string, error) {
	if t.d.Appointment == 0 {
		return "", missing(t.st.Flow, "appointment")
	}
	if err := tooLong(said, maxCommentRunes); err != nil {
		return "", err
	}
	if said != "跳过" {
		sealed, err := t.e.Sealer.Seal(commentField, said)
		if err != nil {
			return "", err
		}
		if err := t.e.DB.CommentSurvey(t, t.d.Appointment, sealed); err != nil {
			return "", err
		}
	}
	return "", stopWith("survey_thanks", nil)
}

// A survey comment may tell of health ("头晕好多了"): sealed at rest like
// the rest of a resident's health details.
const commentField = "survey_comment"

// SealLegacyComments seals the survey comments stored in clear before
// they were sealed; the server runs it at start. It returns how many.
func SealLegacyComments(ctx context.Context, db *storage.DB, s *storage.Sealer) (int, error) {
	rows, err := db.ClearComments(ctx)
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		sealed, err := s.Seal(commentField, r.Comment)
		if err != nil {
			return 0, err
		}
		if err := db.SealComment(ctx, r.AppointmentID, r.Comment, sealed); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
}

// spokenScore finds a score said in a sentence: 林医生挺好的，给五分吧.
var spokenScore = regexp.MustCompile(`([1-5一二两三四五])\s*分`)

// score takes a bare 1-5 as the answer to the oldest open survey.
func (e *Engine) score(ctx context.Context, st *State, said string, in Inbound) ([]string, bool, error) {
	n, ok := listNumber(said)
	if m := spokenScore.FindStringSubmatch(said); !ok && m != nil {
		n, ok = listNumber(m[1])
	}
	if !ok || n < 1 || n > 5 || st.Flow != "" {
		return nil, false, nil
	}
	id, open, err := e.DB.OpenSurvey(ctx, in.OpenID, in.At.Add(-surveyWindow))
	if err != nil || !open {
		return nil, open, err
	}
	if _, err := e.DB.AnswerSurvey(ctx, id, n, in.At); err != nil {
		return nil, true, err
	}
	replies, err := e.enter(ctx, st, survey.name, in, &surveyData{Appointment: id, Score: n})
	return replies, true, err
}
