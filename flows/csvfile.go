package flows

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// MaxCSV is the largest CSV file an import reads (about 100,000 rows).
const MaxCSV = 32 << 20

// FileError says an import file cannot be read as one: its encoding, its
// header or its CSV syntax. Rows it holds are judged one by one instead.
type FileError struct{ Err error }

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// readCSV reads a CSV file as Excel on Chinese Windows saves it; what is
// wrong with the file as a whole is a *FileError.
func readCSV(r io.Reader, columns map[string]string, required ...string) ([]map[string]string, []int, error) {
	rows, lines, err := parseCSV(r, columns, required...)
	if err != nil {
		return nil, nil, &FileError{err}
	}
	return rows, lines, nil
}

// parseCSV reads a CSV file as Excel on Chinese Windows saves it: UTF-8 with
// or without a byte-order mark, or GB18030. The first row names the columns;
// columns maps each accepted header (Chinese or English) to a field name.
// It returns the rows as field name -> value, and each row's line number.
func parseCSV(r io.Reader, columns map[string]string, required ...string) ([]map[string]string, []int, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxCSV+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > MaxCSV {
		return nil, nil, fmt.Errorf("文件超过 %d MB，请拆成几个文件上传", MaxCSV>>20)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		if data, err = simplifiedchinese.GB18030.NewDecoder().Bytes(data); err != nil {
			return nil, nil, errors.New("文件不是 UTF-8 或 GB18030 编码的文本，请在 Excel 中另存为 CSV")
		}
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, nil, errors.New("文件是空的，第一行应是列名")
	}
	fields := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		name, ok := columns[strings.TrimSpace(h)]
		if !ok {
			return nil, nil, fmt.Errorf("不认识的列“%s”", strings.TrimSpace(h))
		}
		fields[i], seen[name] = name, true
	}
	for _, r := range required {
		if !seen[r] {
			return nil, nil, fmt.Errorf("缺少“%s”列", headerOf(columns, r))
		}
	}
	var rows []map[string]string
	var lines []int
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, syntaxError(err)
		}
		line, _ := cr.FieldPos(0)
		row := map[string]string{}
		blank := true
		for i, v := range rec {
			if i < len(fields) {
				row[fields[i]] = strings.TrimSpace(v)
				blank = blank && row[fields[i]] == ""
			}
		}
		if !blank {
			rows, lines = append(rows, row), append(lines, line)
		}
	}
	return rows, lines, nil
}

// headerOf is the Chinese header a field is read from.
func headerOf(columns map[string]string, field string) string {
	for h, f := range columns {
		if f == field && !isASCII(h) {
			return h
		}
	}
	return field
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// syntaxError says where and how a row breaks the CSV syntax, in the words
// of the staff member who saved the file.
func syntaxError(err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	what := "格式有误"
	switch {
	case errors.Is(pe.Err, csv.ErrQuote):
		what = "引号没有配对"
	case errors.Is(pe.Err, csv.ErrBareQuote):
		what = "格子中间有英文双引号（含引号的格子要整个用双引号括起来，或改用中文引号）"
	}
	return fmt.Errorf("第 %d 行%s", pe.StartLine, what)
}

// splitList reads "a;b", "a；b", "a、b" or "a,b" inside one cell.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '；' || r == '、' || r == ',' || r == '，' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
