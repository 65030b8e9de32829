/** Chat (docs/api.md, "Chat"; docs/chat.md): conversations, messages, files, follows, broadcasts. */
export { ChatService, type SendInput } from './chat-service.ts';
export { UploadService, CHAT_FILES_PATH, type UploadLimits } from './uploads.ts';
export { FollowService } from './follows.ts';
export { BroadcastService, CHAT_BROADCAST } from './broadcasts.ts';
export { ChatSinkRelay, type ChatActor, type ChatSink, type LiveCalls } from './ports.ts';
