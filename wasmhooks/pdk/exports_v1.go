//go:build wasip1 && grin_abi_v1

package pdk

// Code below: one export per hook point, ABI v1 (built with -tags
// grin_abi_v1). The host calls only the hooks a plugin's manifest names;
// the others answer "unchanged".

//go:wasmexport hook_fast_reply
func hookFastReply(n uint32) uint32 { return runV1("fast_reply", n) }

//go:wasmexport hook_before_cat_reads_message
func hookBeforeCatReadsMessage(n uint32) uint32 { return runV1("before_cat_reads_message", n) }

//go:wasmexport hook_cat_recall_query
func hookCatRecallQuery(n uint32) uint32 { return runV1("cat_recall_query", n) }

//go:wasmexport hook_before_cat_recalls_memories
func hookBeforeCatRecallsMemories(n uint32) uint32 { return runV1("before_cat_recalls_memories", n) }

//go:wasmexport hook_before_cat_recalls_episodic_memories
func hookBeforeCatRecallsEpisodicMemories(n uint32) uint32 {
	return runV1("before_cat_recalls_episodic_memories", n)
}

//go:wasmexport hook_before_cat_recalls_declarative_memories
func hookBeforeCatRecallsDeclarativeMemories(n uint32) uint32 {
	return runV1("before_cat_recalls_declarative_memories", n)
}

//go:wasmexport hook_before_cat_recalls_procedural_memories
func hookBeforeCatRecallsProceduralMemories(n uint32) uint32 {
	return runV1("before_cat_recalls_procedural_memories", n)
}

//go:wasmexport hook_after_cat_recalls_memories
func hookAfterCatRecallsMemories(n uint32) uint32 { return runV1("after_cat_recalls_memories", n) }

//go:wasmexport hook_before_agent_starts
func hookBeforeAgentStarts(n uint32) uint32 { return runV1("before_agent_starts", n) }

//go:wasmexport hook_agent_fast_reply
func hookAgentFastReply(n uint32) uint32 { return runV1("agent_fast_reply", n) }

//go:wasmexport hook_agent_prompt_prefix
func hookAgentPromptPrefix(n uint32) uint32 { return runV1("agent_prompt_prefix", n) }

//go:wasmexport hook_agent_prompt_suffix
func hookAgentPromptSuffix(n uint32) uint32 { return runV1("agent_prompt_suffix", n) }

//go:wasmexport hook_before_cat_stores_episodic_memory
func hookBeforeCatStoresEpisodicMemory(n uint32) uint32 {
	return runV1("before_cat_stores_episodic_memory", n)
}

//go:wasmexport hook_before_cat_sends_message
func hookBeforeCatSendsMessage(n uint32) uint32 { return runV1("before_cat_sends_message", n) }

//go:wasmexport hook_before_rabbithole_splits_text
func hookBeforeRabbitholeSplitsText(n uint32) uint32 {
	return runV1("before_rabbithole_splits_text", n)
}

//go:wasmexport hook_after_rabbithole_splitted_text
func hookAfterRabbitholeSplittedText(n uint32) uint32 {
	return runV1("after_rabbithole_splitted_text", n)
}

//go:wasmexport hook_before_rabbithole_stores_documents
func hookBeforeRabbitholeStoresDocuments(n uint32) uint32 {
	return runV1("before_rabbithole_stores_documents", n)
}

//go:wasmexport hook_before_rabbithole_insert_memory
func hookBeforeRabbitholeInsertMemory(n uint32) uint32 {
	return runV1("before_rabbithole_insert_memory", n)
}

//go:wasmexport hook_after_rabbithole_stored_documents
func hookAfterRabbitholeStoredDocuments(n uint32) uint32 {
	return runV1("after_rabbithole_stored_documents", n)
}
