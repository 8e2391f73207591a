//go:build wasip1 && !grin_abi_v1

package pdk

// Code below: one export per hook point, ABI v2. The host calls only the
// hooks a plugin's manifest names; the others answer "unchanged".

//go:wasmexport hook_fast_reply
func hookFastReply(n, settingsVersion uint32) uint32 { return runV2("fast_reply", n, settingsVersion) }

//go:wasmexport hook_before_cat_reads_message
func hookBeforeCatReadsMessage(n, settingsVersion uint32) uint32 {
	return runV2("before_cat_reads_message", n, settingsVersion)
}

//go:wasmexport hook_cat_recall_query
func hookCatRecallQuery(n, settingsVersion uint32) uint32 {
	return runV2("cat_recall_query", n, settingsVersion)
}

//go:wasmexport hook_before_cat_recalls_memories
func hookBeforeCatRecallsMemories(n, settingsVersion uint32) uint32 {
	return runV2("before_cat_recalls_memories", n, settingsVersion)
}

//go:wasmexport hook_before_cat_recalls_episodic_memories
func hookBeforeCatRecallsEpisodicMemories(n, settingsVersion uint32) uint32 {
	return runV2("before_cat_recalls_episodic_memories", n, settingsVersion)
}

//go:wasmexport hook_before_cat_recalls_declarative_memories
func hookBeforeCatRecallsDeclarativeMemories(n, settingsVersion uint32) uint32 {
	return runV2("before_cat_recalls_declarative_memories", n, settingsVersion)
}

//go:wasmexport hook_before_cat_recalls_procedural_memories
func hookBeforeCatRecallsProceduralMemories(n, settingsVersion uint32) uint32 {
	return runV2("before_cat_recalls_procedural_memories", n, settingsVersion)
}

//go:wasmexport hook_after_cat_recalls_memories
func hookAfterCatRecallsMemories(n, settingsVersion uint32) uint32 {
	return runV2("after_cat_recalls_memories", n, settingsVersion)
}

//go:wasmexport hook_before_agent_starts
func hookBeforeAgentStarts(n, settingsVersion uint32) uint32 {
	return runV2("before_agent_starts", n, settingsVersion)
}

//go:wasmexport hook_agent_fast_reply
func hookAgentFastReply(n, settingsVersion uint32) uint32 {
	return runV2("agent_fast_reply", n, settingsVersion)
}

//go:wasmexport hook_agent_prompt_prefix
func hookAgentPromptPrefix(n, settingsVersion uint32) uint32 {
	return runV2("agent_prompt_prefix", n, settingsVersion)
}

//go:wasmexport hook_agent_prompt_suffix
func hookAgentPromptSuffix(n, settingsVersion uint32) uint32 {
	return runV2("agent_prompt_suffix", n, settingsVersion)
}

//go:wasmexport hook_before_cat_stores_episodic_memory
func hookBeforeCatStoresEpisodicMemory(n, settingsVersion uint32) uint32 {
	return runV2("before_cat_stores_episodic_memory", n, settingsVersion)
}

//go:wasmexport hook_before_cat_sends_message
func hookBeforeCatSendsMessage(n, settingsVersion uint32) uint32 {
	return runV2("before_cat_sends_message", n, settingsVersion)
}

//go:wasmexport hook_before_rabbithole_splits_text
func hookBeforeRabbitholeSplitsText(n, settingsVersion uint32) uint32 {
	return runV2("before_rabbithole_splits_text", n, settingsVersion)
}

//go:wasmexport hook_after_rabbithole_splitted_text
func hookAfterRabbitholeSplittedText(n, settingsVersion uint32) uint32 {
	return runV2("after_rabbithole_splitted_text", n, settingsVersion)
}

//go:wasmexport hook_before_rabbithole_stores_documents
func hookBeforeRabbitholeStoresDocuments(n, settingsVersion uint32) uint32 {
	return runV2("before_rabbithole_stores_documents", n, settingsVersion)
}

//go:wasmexport hook_before_rabbithole_insert_memory
func hookBeforeRabbitholeInsertMemory(n, settingsVersion uint32) uint32 {
	return runV2("before_rabbithole_insert_memory", n, settingsVersion)
}

//go:wasmexport hook_after_rabbithole_stored_documents
func hookAfterRabbitholeStoredDocuments(n, settingsVersion uint32) uint32 {
	return runV2("after_rabbithole_stored_documents", n, settingsVersion)
}
