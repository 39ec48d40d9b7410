// The web client's SDK: one browser device. Importing this module installs every part.
export { SecureChatClient, ClientError, hasPendingChange } from './client.js';
export { ApiError } from './api.js';
export { directConversation, roomConversation } from './messaging.js';
export { safeContentType } from './attachments.js';
import './connection.js';
import './rooms.js';
import './signals.js';
import './calls.js';
import './group-calls.js';
export { Call, CallSettings } from './calls.js';
export { GroupCall } from './group-calls.js';
