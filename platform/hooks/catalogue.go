package hooks

// The catalogue: every hook point the pipeline calls, in the order it
// calls them, with its payload type and what a plugin changes there. The
// pipeline calls hooks only through these values, so the reference
// generated from them is what the code does.

// Chat: a user's message, from arrival to reply.
var (
	OnFastReply = Point[FastOutput]{
		Info: Info{
			Name: FastReply, Stage: StageChat,
			When:   "First, before anything else happens to a message: before it is read, recalled against or remembered.",
			Output: "An `output` that is not empty becomes the reply at once; an empty one lets the pipeline go on.",
			Effects: []Effect{
				{"output", "Not empty: the reply. Reading the message, recall, the model and episodic memory are skipped; " +
					"before_cat_sends_message still runs, and the conversation history records the message as the user sent it " +
					"(before_cat_reads_message did not run, so a redaction there does not apply) and this reply."},
			},
			Reaches: []Target{TargetHistory, TargetWhy, TargetReply},
			Cat: "The Cat calls fast_reply(fast_reply: dict) first too, and answers with its \"output\"; but it then skips everything, " +
				"before_cat_sends_message and the history included. grin records the turn and runs before_cat_sends_message, " +
				"so the conversation stays whole and plugins that rewrite replies see this one.",
		},
		Example: FastOutput{},
	}

	OnBeforeCatReadsMessage = Point[Message]{
		Info: Info{
			Name: BeforeCatReadsMessage, Stage: StageChat,
			When: "When a message arrives, after fast_reply; before it is recalled against, shown to the model, " +
				"written to the conversation history or stored in episodic memory.",
			Output: "The message's `text` replaces the user's for the rest of the turn (a blank one is ignored).",
			Effects: []Effect{
				{"text", "Everything after sees this text instead of the user's: the recall query, the prompt, `why.input`, " +
					"the user's turn in the conversation history and the text stored in episodic memory. " +
					"To redact what a user said (an e-mail address, a card number), change it here: no later step sees the original."},
				{"", "Fields other than `text` (whatever else the client sent) are passed to this hook and to no later step."},
			},
			Reaches: []Target{TargetRecall, TargetPrompt, TargetEpisodic, TargetHistory, TargetWhy},
			Cat: "The Cat's before_cat_reads_message(user_message_json) works the same way: its text is the message from then on, " +
				"in the history, recall, episodic memory and why.input. The Cat keeps the other fields in working memory " +
				"for later hooks; grin has no working memory for plugins yet.",
		},
		Example: Message{Text: "Write to me at alice@example.com", Extra: map[string]any{"lang": "en"}},
	}

	OnCatRecallQuery = Point[string]{
		Info: Info{
			Name: CatRecallQuery, Stage: StageChat,
			When:   "After before_cat_reads_message, before the query is embedded for recall.",
			Output: "The text embedded to search every memory collection.",
			Effects: []Effect{
				{"", "Changes only what is recalled (`why.memory`, and the context in the prompt): " +
					"not `why.input`, the history, the prompt's question or what is stored."},
			},
			Reaches: []Target{TargetRecall},
			Cat:     "Same as the Cat's cat_recall_query(user_message: str), used for instance to recall with a hypothetical answer (HyDE).",
		},
		Example: "What is my cat called?",
	}

	OnBeforeCatRecallsMemories = Point[Empty]{
		Info: Info{
			Name: BeforeCatRecallsMemories, Stage: StageChat,
			When:    "After the query is embedded, before the three recall configurations are made.",
			Output:  "Ignored.",
			Effects: []Effect{{"", "Nothing: the payload is empty and the output is ignored. Useful for logging."}},
			Reaches: []Target{},
			Cat:     "The Cat's before_cat_recalls_memories() takes no payload and returns nothing either.",
		},
		Example: Empty{},
	}

	OnBeforeCatRecallsEpisodicMemories = Point[RecallConfig]{
		Info: Info{
			Name: BeforeCatRecallsEpisodicMemories, Stage: StageChat,
			When:    "Before the user's episodic memory (what they said before) is searched.",
			Output:  "The configuration of the search.",
			Effects: recallEffects("{\"source\": <user id>}", "Whatever it says, the search stays within the user's own episodic memory: a change can only narrow it."),
			Reaches: []Target{TargetRecall},
			Cat: "The Cat passes the same {embedding, k: 3, threshold: 0.7, metadata: {source: user_id}}. " +
				"There the metadata filter is all that keeps users apart, so a plugin that changes it reads other users' memories; in grin it cannot.",
		},
		Example: RecallConfig{Embedding: []float32{0.12, -0.03, 0.4}, K: 3, Threshold: 0.7, Metadata: map[string]any{"source": "alice"}},
	}

	OnBeforeCatRecallsDeclarativeMemories = Point[RecallConfig]{
		Info: Info{
			Name: BeforeCatRecallsDeclarativeMemories, Stage: StageChat,
			When:    "Before declarative memory (uploaded documents) is searched.",
			Output:  "The configuration of the search.",
			Effects: recallEffects("{}", "The search covers only the spaces the policy lets the user read, whatever the metadata says."),
			Reaches: []Target{TargetRecall},
			Cat: "The Cat passes {embedding, k: 3, threshold: 0.7, metadata: {}}. grin's threshold is 0.5 " +
				"(document chunks are long and share fewer words with a question), and recall is bounded by the policy's spaces.",
		},
		Example: RecallConfig{Embedding: []float32{0.12, -0.03, 0.4}, K: 3, Threshold: 0.5, Metadata: map[string]any{"author": "alice"}},
	}

	OnBeforeCatRecallsProceduralMemories = Point[RecallConfig]{
		Info: Info{
			Name: BeforeCatRecallsProceduralMemories, Stage: StageChat,
			When:    "Before procedural memory (tool and form descriptions) is searched.",
			Output:  "The configuration of the search.",
			Effects: recallEffects("{}", "Procedural memory is global and read-only through the API."),
			Reaches: []Target{TargetRecall},
			Cat:     "The Cat passes {embedding, k: 3, threshold: 0.7, metadata: {}}, and recalls tools and forms with it.",
		},
		Example: RecallConfig{Embedding: []float32{0.12, -0.03, 0.4}, K: 3, Threshold: 0.7, Metadata: map[string]any{}},
	}

	OnAfterCatRecallsMemories = Point[Empty]{
		Info: Info{
			Name: AfterCatRecallsMemories, Stage: StageChat,
			When:    "After the three searches, before the prompt is made.",
			Output:  "Ignored.",
			Effects: []Effect{{"", "Nothing: the payload is empty and the output is ignored. The recalled memories are in before_cat_sends_message's `why.memory`."}},
			Reaches: []Target{},
			Cat:     "The Cat's after_cat_recalls_memories() takes no payload; Cat plugins read the recalled memories from working memory, which grin does not pass.",
		},
		Example: Empty{},
	}

	OnAgentPromptPrefix = Point[string]{
		Info: Info{
			Name: AgentPromptPrefix, Stage: StageChat,
			When:   "When the model's prompt is made, after recall.",
			Output: "The start of the system prompt, before the recalled memories.",
			Effects: []Effect{
				{"", "Replaces the prefix (by default the Cat's \"You are the Cheshire Cat AI…\"); the prompt is shown in " +
					"`why.model_interactions[].prompt`. It changes the reply only through what the model makes of it."},
			},
			Reaches: []Target{TargetPrompt},
			Cat:     "Same as the Cat's agent_prompt_prefix(prefix: str), with the same default.",
		},
		Example: "You are the Cheshire Cat AI, an intelligent AI that passes the Turing test.",
	}

	OnBeforeCatStoresEpisodicMemory = Point[NewMemory]{
		Info: Info{
			Name: BeforeCatStoresEpisodicMemory, Stage: StageChat,
			When: "After the model has replied, before the user's message is stored in their episodic memory. " +
				"By then the message is already in the prompt and `why.input`, and goes to the history with the reply.",
			Output: "The memory to store.",
			Effects: []Effect{
				{"page_content", "The text stored and embedded in the user's episodic memory, which later turns recall; blank: the message is not remembered. " +
					"It does not change the conversation history, `why.input` or the reply: to keep something out of those, change it in before_cat_reads_message."},
				{"metadata", "Stored with the memory; recall configs filter on it. `when` is the time in seconds; `source` is always set back to the user's id."},
			},
			Reaches: []Target{TargetEpisodic},
			Cat: "The Cat's before_cat_stores_episodic_memory(doc: Document) stores the returned text but embeds the original message; " +
				"grin embeds the text it stores, skips a blank one, and keeps `source` the user's.",
		},
		Example: NewMemory{PageContent: "My cat is called Dinah", Metadata: map[string]any{"source": "alice", "when": 1767225600.5}},
	}

	OnBeforeCatSendsMessage = Point[Reply]{
		Info: Info{
			Name: BeforeCatSendsMessage, Stage: StageChat,
			When:   "Last, after the reply is made (by the model or fast_reply), before it is sent and written to the history.",
			Output: "The reply sent to the user's sockets (or POST /message's answer) and recorded in the history.",
			Effects: []Effect{
				{"content", "The reply's content, what the Cat's clients show. If only `content` changed, `text` follows it; " +
					"if both changed to different values, `content` wins (it is the Cat's field)."},
				{"text", "The reply's text and the AI turn in the conversation history. If only `text` changed, `content` follows it."},
				{"why", "Sent with the reply and stored with the AI turn in the history."},
				{"type", "Ignored: the reply is always a chat frame."},
				{"user_id", "Ignored: the reply goes to the user who asked."},
			},
			Reaches: []Target{TargetHistory, TargetWhy, TargetReply},
			Cat: "Same as the Cat's before_cat_sends_message(message: CatMessage): what it returns is sent, and its content recorded in the history. " +
				"In the Cat `text` is an alias of `content`; grin keeps both fields and keeps them equal.",
		},
		Example: Reply{Type: "chat", Who: "AI", UserID: "alice", Text: "Your cat is called Dinah.", Content: "Your cat is called Dinah.", Message: "Your cat is called Dinah.", When: 1767225661.4, Why: Why{
			Input: "What is my cat called?", IntermediateSteps: []any{},
			Memory: MemoryWhy{
				Episodic:    []Document{{ID: "5f0c7a8e-8d1b-4e44-9a53-2f4f0d8f2d11", PageContent: "My cat is called Dinah", Metadata: map[string]any{"source": "alice", "when": 1767225600.5}, Score: 0.83}},
				Declarative: []Document{}, Procedural: []Document{},
			},
			ModelInteractions: []ModelInteraction{{ModelType: "llm", Source: "agent",
				Prompt: "System: You are the Cheshire Cat AI, …\nHuman: What is my cat called?", Reply: "Your cat is called Dinah.",
				InputTokens: 14, OutputTokens: 6, StartedAt: 1767225660.1, EndedAt: 1767225661.4}},
			AgentOutput: AgentOutput{Output: "Your cat is called Dinah.", IntermediateSteps: []any{}},
		}},
	}
)

// Ingestion: an uploaded document, from text to stored chunks.
var (
	OnBeforeRabbitholeSplitsText = Point[string]{
		Info: Info{
			Name: BeforeRabbitholeSplitsText, Stage: StageIngestion,
			When:    "When a document (a file, a page, a text) has been read into text, before it is cut into chunks.",
			Output:  "The text to cut into chunks and store.",
			Effects: []Effect{{"", "Replaces the document's whole text: every chunk is cut from what is returned."}},
			Reaches: []Target{TargetDeclarative},
			Cat:     "The Cat's before_rabbithole_splits_text(docs: List[Document]) gets the parsed pages as documents; grin passes the document's text as one string.",
		},
		Example: "Alice was beginning to get very tired of sitting by her sister on the bank…",
	}

	OnAfterRabbitholeSplittedText = Point[[]string]{
		Info: Info{
			Name: AfterRabbitholeSplittedText, Stage: StageIngestion,
			When:    "After the text is cut into chunks, before each chunk gets its metadata.",
			Output:  "The chunks to store.",
			Effects: []Effect{{"", "The chunks: return fewer, more or other ones. Each then goes through before_rabbithole_insert_memory."}},
			Reaches: []Target{TargetDeclarative},
			Cat:     "The Cat's after_rabbithole_splitted_text(chunks: List[Document]) gets documents; grin passes the chunks' texts, and sets metadata in before_rabbithole_insert_memory.",
		},
		Example: []string{"Alice was beginning to get very tired…", "…of sitting by her sister on the bank"},
	}

	OnBeforeRabbitholeInsertMemory = Point[NewMemory]{
		Info: Info{
			Name: BeforeRabbitholeInsertMemory, Stage: StageIngestion,
			When:   "For each chunk, once its metadata is set, before it is embedded.",
			Output: "The chunk to store.",
			Effects: []Effect{
				{"page_content", "The text stored and embedded; blank: the chunk is dropped."},
				{"metadata", "Stored with the chunk; recall configs filter on it (the seed's example stamps `author` here and recalls by it). " +
					"It starts with `source`, `when`, `uploaded_by` and the upload's own metadata."},
			},
			Reaches: []Target{TargetDeclarative},
			Cat:     "Same as the Cat's before_rabbithole_insert_memory(doc: Document), per chunk, metadata set, before embedding.",
		},
		Example: NewMemory{PageContent: "The tarts were stolen by the Knave of Hearts.",
			Metadata: map[string]any{"source": "alice.txt", "when": 1767225600.5, "uploaded_by": "alice"}},
	}

	OnBeforeRabbitholeStoresDocuments = Point[[]NewMemory]{
		Info: Info{
			Name: BeforeRabbitholeStoresDocuments, Stage: StageIngestion,
			When:    "Once every chunk has been through before_rabbithole_insert_memory, before any is embedded and stored.",
			Output:  "The chunks to store.",
			Effects: []Effect{{"", "The list stored: drop, add, change or reorder chunks. The upload's quotas count what is returned."}},
			Reaches: []Target{TargetDeclarative},
			Cat: "The Cat's before_rabbithole_stores_documents(docs: List[Document]) runs before the per-chunk " +
				"before_rabbithole_insert_memory; grin runs it after, so it sees each chunk's final metadata.",
		},
		Example: []NewMemory{{PageContent: "The tarts were stolen by the Knave of Hearts.",
			Metadata: map[string]any{"source": "alice.txt", "when": 1767225600.5, "uploaded_by": "alice"}}},
	}

	OnAfterRabbitholeStoredDocuments = Point[Stored]{
		Info: Info{
			Name: AfterRabbitholeStoredDocuments, Stage: StageIngestion,
			When:    "After the chunks are stored, before the uploader is told.",
			Output:  "Ignored.",
			Effects: []Effect{{"", "Nothing: the output is ignored. Useful for logging or counting."}},
			Reaches: []Target{},
			Cat:     "The Cat's after_rabbithole_stored_documents(source, stored_points) gets the stored points; grin passes the source and how many chunks were stored.",
		},
		Example: Stored{Source: "alice.txt", Chunks: 1},
	}
)

// recallEffects are the effects of the three recall configurations'
// fields.
func recallEffects(metadata, scope string) []Effect {
	return []Effect{
		{"embedding", "The vector memories are compared with: replace it to search for something else."},
		{"k", "How many memories at most are recalled."},
		{"threshold", "The lowest similarity (cosine, 0 to 1) a recalled memory has."},
		{"metadata", "Recalled memories have each key with an equal value (an AND of equalities). It starts as " + metadata + ". " + scope},
	}
}

// Catalogue returns every hook point the pipeline calls: chat in the
// order of a message, then ingestion in the order of an upload.
func Catalogue() []Hook {
	return []Hook{
		OnFastReply, OnBeforeCatReadsMessage, OnCatRecallQuery, OnBeforeCatRecallsMemories,
		OnBeforeCatRecallsEpisodicMemories, OnBeforeCatRecallsDeclarativeMemories, OnBeforeCatRecallsProceduralMemories,
		OnAfterCatRecallsMemories, OnBeforeAgentStarts, OnAgentFastReply, OnAgentPromptPrefix, OnAgentPromptSuffix,
		OnBeforeCatStoresEpisodicMemory, OnBeforeCatSendsMessage,
		OnBeforeRabbitholeSplitsText, OnAfterRabbitholeSplittedText, OnBeforeRabbitholeInsertMemory,
		OnBeforeRabbitholeStoresDocuments, OnAfterRabbitholeStoredDocuments,
	}
}
