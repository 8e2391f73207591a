package transfer

// Fate says what a migration does with one table of grin's schema.
type Fate struct {
	// Copy is true for a table whose rows go to the destination.
	Copy bool
	// Why a table is left behind, in words shown to the operator.
	Why string
	// Packed names the columns whose values grin may store compressed on
	// SQLite (database.Pack): they are unpacked before they are copied
	// and compared.
	Packed []string
}

// Tables is the one list of grin's tables and what a migration does with
// each. A table of the source that it does not name stops the migration
// before anything is copied (a new migration added a table nobody decided
// about), and TestTablesListEverySchemaTable fails the build's tests
// first, so a table is never silently left behind.
func Tables() map[string]Fate {
	return map[string]Fate{
		"users":                {Copy: true},
		"grants":               {Copy: true},
		"settings":             {Copy: true},
		"conversation_history": {Copy: true, Packed: []string{"why"}},
		"plugins":              {Copy: true},
		"policy_versions":      {Copy: true},
		"plugin_kv":            {Copy: true},
		"audit":                {Copy: true},
		// Copied so that replicas reading the copy see the same
		// generations the grants were written at.
		"grant_generations": {Copy: true},
		"plugin_modules":    {Copy: true},
		// The generated JWT secret: copied, so tokens issued before the
		// move stay valid.
		"secrets":        {Copy: true},
		"turn_leases":    {Why: "who is answering a user's message now: nobody, once grin is stopped for the move"},
		"login_failures": {Why: "the login throttle's counts are short-lived; they start afresh"},
		"login_clients":  {Why: "the login throttle's counts are short-lived; they start afresh"},
		"memory_points": {Why: "memories are vectors: `grin memory migrate` moves them to Weaviate, " +
			"which PostgreSQL deployments use (GRIN_MEMORY=weaviate)"},
	}
}
