package storage

import (
	"context"
	"encoding/base64"
)

// Article is an article (图文) for broadcasts, its cover image included.
type Article struct {
	ID           int64  `db:"id"`
	Institution  int64  `db:"-"` // whose admins wrote it; 0: city staff
	Title        string `db:"title"`
	Body         string `db:"body"`
	SourceURL    string `db:"source_url"`
	Cover        []byte `db:"-"`
	CoverName    string `db:"cover_name"`
	CoverMediaID string `db:"cover_media_id"` // the cover as WeChat's permanent image; "" until first sent
}

// CreateArticle stores an article and returns its ID.
func (db *DB) CreateArticle(ctx context.Context, a Article, actor string) (int64, error) {
	var id int64
	err := db.get(ctx, "CreateArticle", &id, `INSERT INTO articles (institution_id, title, body, source_url, cover, cover_name,
		created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, nullID(a.Institution), a.Title, a.Body, a.SourceURL,
		base64.StdEncoding.EncodeToString(a.Cover), a.CoverName, actor, db.now())
	return id, err
}

// ArticleByID reads an article in scope, its cover included.
func (db *DB) ArticleByID(ctx context.Context, scope Scope, id int64) (Article, error) {
	var row struct {
		Article
		Institution *int64 `db:"institution_id"`
		Cover       string `db:"cover"`
	}
	err := db.get(ctx, "ArticleByID", &row, `SELECT id, institution_id, title, body, source_url, cover, cover_name, cover_media_id
		FROM articles WHERE id = ?`, id)
	if err != nil {
		return Article{}, err
	}
	a := row.Article
	if row.Institution != nil {
		a.Institution = *row.Institution
	}
	if !scope.Whole() && a.Institution != scope.Institution {
		return Article{}, fail("ArticleByID", ErrNotFound)
	}
	if a.Cover, err = base64.StdEncoding.DecodeString(row.Cover); err != nil {
		return Article{}, fail("ArticleByID", err)
	}
	return a, nil
}

// SetArticleCover records the permanent image WeChat made of an article's
// cover, unless one was recorded first (two batches uploading at once).
func (db *DB) SetArticleCover(ctx context.Context, id int64, mediaID string) error {
	_, err := db.exec(ctx, "SetArticleCover", `UPDATE articles SET cover_media_id = ? WHERE id = ? AND cover_media_id = ''`, mediaID, id)
	return err
}
