export const CallPage = ({ callId }: { callId: string; search: URLSearchParams }) => <h1>Call {callId}</h1>;
