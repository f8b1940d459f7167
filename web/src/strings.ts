/** Every string a person reads in the client, in one place (for review and translation). */

export const t = {
  appName: "Roost",
  loading: "Loading…",

  // first run and sign-in
  setupTitle: "Create the first admin",
  setupIntro: "Nobody has set up this Roost yet. The first account becomes its administrator.",
  setupCode: "Setup code",
  /** Text, then commands shown as code, alternating. */
  setupCodeHelp: [
    "The setup code is shown on the Pi's console, by ",
    "sudo roost status",
    ", and in the journal: ",
    "journalctl -u roost | grep setup_code",
  ],
  username: "Username",
  password: "Password",
  createAdmin: "Create admin",
  signInTitle: "Sign in",
  signIn: "Sign in",
  signUpTitle: "Join with an invite",
  inviteCode: "Invite code",
  signUp: "Create account",
  haveInvite: "Have an invite? Open the invite link you were sent.",
  signOut: "Sign out",
  working: "Please wait…",

  // rooms
  rooms: "Rooms",
  yourRooms: "Your rooms",
  publicRooms: "Public rooms to join",
  noRooms: "You are in no room yet. Create one or join a public room.",
  join: "Join",
  joinRoom: (name: string) => `Join ${name}`,
  newRoom: "New room",
  roomName: "Room name",
  privateRoom: "Private (members are added by invitation)",
  createRoom: "Create room",
  chooseRoom: "Choose a room to start chatting.",
  back: "Back to rooms",

  // timeline
  messages: "Messages",
  loadingOlder: "Loading older messages…",
  beginning: "This is the beginning of the room.",
  newer: "Show newer messages",
  edited: "(edited)",
  deleted: "This message was deleted.",
  edit: "Edit",
  editMessage: "Edit message",
  save: "Save",
  cancel: "Cancel",
  delete: "Delete",
  confirmDelete: "Delete this message?",
  sending: "Sending…",
  waiting: "Waiting for the connection; it will be sent then.",
  notSent: (why: string) => `Not sent: ${why}`,
  retry: "Retry",
  discard: "Discard",
  message: "Message",
  send: "Send",
  today: "Today",
  yesterday: "Yesterday",
  unknownAuthor: "Deleted account",

  // attachments
  attach: "Attach a file",
  uploading: (name: string, percent: number) => `Uploading ${name}: ${percent}%`,
  attached: (name: string) => `Attached: ${name}`,
  removeAttachment: (name: string) => `Remove ${name}`,
  cancelUpload: (name: string) => `Cancel the upload of ${name}`,
  uploadTooLarge: (name: string, why: string) => `${name} is too large to upload. ${why}`,
  uploadUnsupported: (name: string, why: string) => `${name} is a type of file Roost does not accept. ${why}`,
  uploadFailed: (name: string, why: string) => `${name} could not be uploaded: ${why}`,
  download: (name: string, size: string) => `Download ${name} (${size})`,

  // calls
  joinCall: "Join call",
  loadingCall: "Loading the call…",
  call: "Call",
  callConnecting: "Connecting to the call…",
  callConnected: "In the call",
  callFailed: "Could not join the call.",
  participants: "Participants",
  you: "(you)",
  speaking: "speaking",
  muted: "muted",
  mute: "Mute",
  camera: "Camera",
  shareScreen: "Share screen",
  leaveCall: "Leave call",

  // administration
  administration: "Administration",
  invites: "Invites",
  inviteUses: "How many people may use it",
  inviteDays: "Valid for (days)",
  createInvite: "Create invite link",
  inviteLink: "Invite link",
  copyLink: "Copy link",
  copied: "Copied",
  inviteSummary: (uses: number, max: number, until: string) => `Used ${uses} of ${max}, valid until ${until}`,
  revoked: "revoked",
  revoke: "Revoke",
  users: "Accounts",
  disabled: "disabled",

  // search
  searchMessages: "Search messages",
  search: "Search",
  searchResults: "Search results",
  noResults: "No message matches.",
  clearSearch: "Clear search",

  // connection
  reconnecting: "Reconnecting…",
  offline: "Offline. Messages you send are kept and go out when the connection is back.",

  // notifications
  turnOnNotifications: "Turn on notifications",

  // theme
  themeSystem: "Theme: system",
  themeDark: "Theme: dark",
  themeLight: "Theme: light",

  // integrations (bots, incoming and outgoing webhooks)
  botBadge: "bot",
  webhooks: "Webhooks",
  webhookUrl: "Receiver URL",
  webhookEvents: "Events",
  addWebhook: "Add webhook",
  webhookSecret: "Signing secret (shown only now)",
  webhookPaused: (reason: string) => `paused: ${reason}`,
  webhookPending: (n: number) => `${n} queued`,
  pauseWebhook: "Pause",
  resumeWebhook: "Resume",
  deleteWebhook: "Delete",
  webhookDeliveries: "Deliveries",
  webhookNoDeliveries: "Nothing sent yet.",
  webhookDelivery: (event: string, at: string, delivered: boolean, attempts: number, last: string | number) =>
    `${at} ${event}: ${delivered ? "delivered" : "queued"} after ${attempts} attempt(s)${last === "" ? "" : ` (${last})`}`,

  // errors
  networkError: "Roost could not be reached. Check the connection and try again.",
  badCredentials: "That username and password do not match.",
} as const;
