package policies

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// formerModels are models grin wrote by default before, which it replaces
// with today's default on start: they are grin's text, not an
// administrator's, and today's says the same for every rule they load.
var (
	//go:embed defaults/former/model-allow-only.conf
	allowOnlyModel string
)

// allowOnlyBackup keeps the allow-only model when it is replaced.
const allowOnlyBackup = ModelFile + ".allow-only.bak"

// migrateModel replaces a model.conf that is grin's former allow-only
// default with today's, which adds deny rules (p, SUBJECT, OBJECT, ACTION,
// deny). Every rule of policy.csv keeps its meaning: a rule written without
// an effect allows. The former model is kept beside it as
// model.conf.allow-only.bak. A model an administrator changed is left as
// it is.
func (e *Enforcer) migrateModel() error {
	path := filepath.Join(e.dir, ModelFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", ModelFile, err)
	}
	if string(b) != allowOnlyModel {
		return nil
	}
	if err := writeFileAtomic(filepath.Join(e.dir, allowOnlyBackup), b); err != nil {
		return fmt.Errorf("keep the former model as %s: %w", allowOnlyBackup, err)
	}
	if err := writeFileAtomic(path, []byte(defaultModel)); err != nil {
		return fmt.Errorf("write %s: %w", ModelFile, err)
	}
	e.logger.Info("model.conf was grin's former default and now allows deny rules (p, SUBJECT, OBJECT, ACTION, deny); every rule keeps its meaning",
		"backup", allowOnlyBackup, "dir", e.dir)
	return nil
}
